import type { RequestScope } from '../../core/scope.js';
import type { Session, SessionStore } from '../../modules/sessions/session-store.js';
import type { PgDatabase } from './pg-database.js';

/** The sessions port on PostgreSQL: one upsert, so concurrent opens of one id from any replica agree. */
export class PgSessionStore implements SessionStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async open(
    scope: RequestScope,
    session: { id: string; project: string | null; client: string | null; now: string },
  ): Promise<{ session: Session; resumed: boolean }> {
    // xmax = 0 only on a row this statement inserted: an update (resume) sets it.
    const { rows } = await this.#db.query<Session & { inserted: boolean }>(
      `INSERT INTO sessions (tenant_id, id, project, client, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (tenant_id, id) DO UPDATE SET last_seen_at = excluded.last_seen_at
       RETURNING id, project, client, created_at, last_seen_at, (xmax = 0) AS inserted`,
      [scope.tenantId, session.id, session.project, session.client, session.now],
      this.#db.primary,
    );
    const { inserted, ...row } = rows[0] as Session & { inserted: boolean };
    return { session: row, resumed: !inserted };
  }

  async get(scope: RequestScope, id: string): Promise<Session | null> {
    const { rows } = await this.#db.query<Session>(
      'SELECT id, project, client, created_at, last_seen_at FROM sessions WHERE tenant_id = $1 AND id = $2',
      [scope.tenantId, id],
    );
    return rows[0] ?? null;
  }
}
