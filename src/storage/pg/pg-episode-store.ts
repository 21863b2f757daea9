import type { RequestScope } from '../../core/scope.js';
import type { Episode, EpisodeStore, NewEpisode } from '../../modules/episodes/episode-store.js';
import type { PgDatabase } from './pg-database.js';

const COLUMNS = `id, session_id, seq, role, content, digest, occurred_at, recorded_at, importance, metadata,
  state, memory_id, consolidation_reason, reviewed`;

// A buffered episode already linked to a memory (a repeat of one kept) leaves the buffer consolidated.
const LEAVE_BUFFER = `state = CASE WHEN memory_id IS NULL THEN 'evicted' ELSE 'consolidated' END,
  reviewed = memory_id IS NOT NULL`;

const bySeq = (a: Episode, b: Episode) => a.seq - b.seq;

/**
 * The episodic buffer's port on PostgreSQL. An append locks its session's row (FOR UPDATE), so appends
 * to one session from any replica take seq numbers and evict in turn; every other change is one
 * statement whose WHERE clause (state, memory_id IS NULL) makes a racing second call a no-op.
 */
export class PgEpisodeStore implements EpisodeStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async append(
    scope: RequestScope,
    e: NewEpisode,
    bufferSize: number,
  ): Promise<{ episode: Episode; evicted: Episode[] } | null> {
    const t = scope.tenantId;
    return this.#db.transaction(async (client) => {
      const session = await client.query(
        'SELECT 1 FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE',
        [t, e.session_id],
      );
      if (session.rowCount === 0) return null;
      const inserted = await client.query<Episode>(
        `INSERT INTO episodes (tenant_id, id, session_id, seq, role, content, digest, occurred_at, recorded_at,
           importance, metadata)
         VALUES ($1, $2, $3, (SELECT coalesce(max(seq), 0) + 1 FROM episodes WHERE tenant_id = $1 AND session_id = $3),
           $4, $5, $6, $7, $8, $9, $10)
         RETURNING ${COLUMNS}`,
        [
          t,
          e.id,
          e.session_id,
          e.role,
          e.content,
          e.digest,
          e.occurred_at,
          e.recorded_at,
          e.importance,
          JSON.stringify(e.metadata),
        ],
      );
      const evicted = await client.query<Episode>(
        `UPDATE episodes SET ${LEAVE_BUFFER}
         WHERE tenant_id = $1 AND session_id = $2 AND state = 'buffered' AND seq <= (
           SELECT seq FROM episodes WHERE tenant_id = $1 AND session_id = $2 AND state = 'buffered'
           ORDER BY seq DESC OFFSET $3 LIMIT 1)
         RETURNING ${COLUMNS}`,
        [t, e.session_id, bufferSize],
      );
      return { episode: inserted.rows[0] as Episode, evicted: evicted.rows.sort(bySeq) };
    });
  }

  async buffer(scope: RequestScope, sessionId: string): Promise<Episode[]> {
    return this.#select("state = 'buffered'", scope, sessionId);
  }

  async evictAll(scope: RequestScope, sessionId: string): Promise<Episode[]> {
    const { rows } = await this.#db.query<Episode>(
      `UPDATE episodes SET ${LEAVE_BUFFER} WHERE tenant_id = $1 AND session_id = $2 AND state = 'buffered'
       RETURNING ${COLUMNS}`,
      [scope.tenantId, sessionId],
      this.#db.primary,
    );
    return rows.sort(bySeq);
  }

  async idleSessions(before: string, limit: number): Promise<{ tenantId: string; sessionId: string }[]> {
    const { rows } = await this.#db.query<{ tenantId: string; sessionId: string }>(
      `SELECT e.tenant_id AS "tenantId", e.session_id AS "sessionId", max(e.recorded_at) AS last
         FROM episodes e JOIN sessions s ON s.tenant_id = e.tenant_id AND s.id = e.session_id
         WHERE s.last_seen_at < $1
         GROUP BY e.tenant_id, e.session_id
         HAVING max(e.recorded_at) < $1
           AND sum(CASE WHEN e.state = 'buffered' OR (e.state = 'evicted' AND NOT e.reviewed) THEN 1 ELSE 0 END) > 0
         ORDER BY last LIMIT $2`,
      [before, limit],
      this.#db.primary,
    );
    return rows.map(({ tenantId, sessionId }) => ({ tenantId, sessionId }));
  }

  async unreviewed(scope: RequestScope, sessionId: string): Promise<Episode[]> {
    return this.#select("state = 'evicted' AND NOT reviewed", scope, sessionId);
  }

  async repeats(scope: RequestScope, sessionId: string, digest: string): Promise<Episode[]> {
    return this.#select('digest = $3', scope, sessionId, digest);
  }

  async link(
    scope: RequestScope,
    sessionId: string,
    ids: string[],
    memory: { id: string; reason: string },
  ): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.#db.query(
      `UPDATE episodes SET memory_id = $1, consolidation_reason = $2,
         state = CASE WHEN state = 'buffered' THEN 'buffered' ELSE 'consolidated' END,
         reviewed = CASE WHEN state = 'buffered' THEN reviewed ELSE true END
       WHERE tenant_id = $3 AND session_id = $4 AND memory_id IS NULL AND id = ANY($5::text[])`,
      [memory.id, memory.reason, scope.tenantId, sessionId, ids],
      this.#db.primary,
    );
    return result.rowCount ?? 0;
  }

  async markReviewed(scope: RequestScope, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#db.query(
      `UPDATE episodes SET reviewed = true WHERE tenant_id = $1 AND state <> 'buffered' AND id = ANY($2::text[])`,
      [scope.tenantId, ids],
      this.#db.primary,
    );
  }

  async forMemory(scope: RequestScope, memoryId: string): Promise<Episode[]> {
    const { rows } = await this.#db.query<Episode>(
      `SELECT ${COLUMNS} FROM episodes WHERE tenant_id = $1 AND memory_id = $2 ORDER BY session_id, seq`,
      [scope.tenantId, memoryId],
      this.#db.primary,
    );
    return rows;
  }

  // Reads go to the primary: a buffer read right after a write must see it (a replica may lag).
  async #select(where: string, scope: RequestScope, sessionId: string, ...args: unknown[]) {
    const { rows } = await this.#db.query<Episode>(
      `SELECT ${COLUMNS} FROM episodes WHERE tenant_id = $1 AND session_id = $2 AND ${where} ORDER BY seq`,
      [scope.tenantId, sessionId, ...args],
      this.#db.primary,
    );
    return rows;
  }
}
