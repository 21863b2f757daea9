import { type Logger, silentLogger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import type { Session, SessionStore } from '../../modules/sessions/session-store.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

/** The sessions port on SQLite. */
export class SqliteSessionStore implements SessionStore {
  readonly #db: SqliteDatabase;
  readonly #sql: StatementCache;

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#db = db;
    this.#sql = new StatementCache(db);
    // As in SqliteMemoryStore: SQLite errors become storage codes, and writes are file-checked.
    guardStoreMethods<SqliteSessionStore>(
      this,
      { reads: ['get'], writes: ['open'] },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async open(
    scope: RequestScope,
    session: { id: string; project: string | null; client: string | null; now: string },
  ): Promise<{ session: Session; resumed: boolean }> {
    const run = this.#db.transaction(() => {
      const existing = this.#select(scope, session.id);
      if (existing) {
        this.#sql
          .get('UPDATE sessions SET last_seen_at = ? WHERE tenant_id = ? AND id = ?')
          .run(session.now, scope.tenantId, session.id);
        return { session: { ...existing, last_seen_at: session.now }, resumed: true };
      }
      this.#sql
        .get(
          `INSERT INTO sessions (tenant_id, id, project, client, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(scope.tenantId, session.id, session.project, session.client, session.now, session.now);
      return {
        session: {
          id: session.id,
          project: session.project,
          client: session.client,
          created_at: session.now,
          last_seen_at: session.now,
        },
        resumed: false,
      };
    });
    return run.immediate();
  }

  async get(scope: RequestScope, id: string): Promise<Session | null> {
    return this.#select(scope, id) ?? null;
  }

  #select(scope: RequestScope, id: string): Session | undefined {
    return this.#sql
      .get(
        'SELECT id, project, client, created_at, last_seen_at FROM sessions WHERE tenant_id = ? AND id = ?',
      )
      .get(scope.tenantId, id) as Session | undefined;
  }
}
