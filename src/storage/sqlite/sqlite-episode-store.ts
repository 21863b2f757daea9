import { type Logger, silentLogger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import type { Episode, EpisodeStore, NewEpisode } from '../../modules/episodes/episode-store.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

const COLUMNS = `id, session_id, seq, role, content, digest, occurred_at, recorded_at, importance, metadata,
  state, memory_id, consolidation_reason, reviewed`;

/** An episode as SQLite returns it: metadata as JSON text, reviewed as 0 or 1. */
type EpisodeRow = Omit<Episode, 'metadata' | 'reviewed'> & { metadata: string; reviewed: number };

function toEpisode(row: EpisodeRow): Episode {
  return {
    ...row,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    reviewed: row.reviewed === 1,
  };
}

// A buffered episode already linked to a memory (a repeat of one kept) leaves the buffer consolidated.
const LEAVE_BUFFER = `state = CASE WHEN memory_id IS NULL THEN 'evicted' ELSE 'consolidated' END,
  reviewed = CASE WHEN memory_id IS NULL THEN 0 ELSE 1 END`;

/** The episodic buffer's port on SQLite: each change one IMMEDIATE transaction or one statement. */
export class SqliteEpisodeStore implements EpisodeStore {
  readonly #db: SqliteDatabase;
  readonly #sql: StatementCache;

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#db = db;
    this.#sql = new StatementCache(db);
    guardStoreMethods<SqliteEpisodeStore>(
      this,
      {
        reads: ['buffer', 'unreviewed', 'repeats', 'forMemory', 'idleSessions'],
        writes: ['append', 'evictAll', 'link', 'markReviewed'],
      },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async append(
    scope: RequestScope,
    e: NewEpisode,
    bufferSize: number,
  ): Promise<{ episode: Episode; evicted: Episode[] } | null> {
    const t = scope.tenantId;
    const run = this.#db.transaction(() => {
      const session = this.#sql
        .get('SELECT 1 FROM sessions WHERE tenant_id = ? AND id = ?')
        .get(t, e.session_id);
      if (!session) return null;
      const row = this.#sql
        .get(
          `INSERT INTO episodes (tenant_id, id, session_id, seq, role, content, digest, occurred_at, recorded_at,
             importance, metadata)
           VALUES (?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM episodes WHERE tenant_id = ? AND session_id = ?),
             ?, ?, ?, ?, ?, ?, ?)
           RETURNING ${COLUMNS}`,
        )
        .get(
          t,
          e.id,
          e.session_id,
          t,
          e.session_id,
          e.role,
          e.content,
          e.digest,
          e.occurred_at,
          e.recorded_at,
          e.importance,
          JSON.stringify(e.metadata),
        ) as EpisodeRow;
      const evicted = this.#sql
        .get(
          `UPDATE episodes SET ${LEAVE_BUFFER}
           WHERE tenant_id = ? AND session_id = ? AND state = 'buffered' AND seq <= (
             SELECT seq FROM episodes WHERE tenant_id = ? AND session_id = ? AND state = 'buffered'
             ORDER BY seq DESC LIMIT 1 OFFSET ?)
           RETURNING ${COLUMNS}`,
        )
        .all(t, e.session_id, t, e.session_id, bufferSize) as EpisodeRow[];
      return {
        episode: toEpisode(row),
        evicted: evicted.map(toEpisode).sort((a, b) => a.seq - b.seq),
      };
    });
    return run.immediate();
  }

  async buffer(scope: RequestScope, sessionId: string): Promise<Episode[]> {
    return this.#select("state = 'buffered'", scope, sessionId);
  }

  async evictAll(scope: RequestScope, sessionId: string): Promise<Episode[]> {
    const rows = this.#sql
      .get(
        `UPDATE episodes SET ${LEAVE_BUFFER} WHERE tenant_id = ? AND session_id = ? AND state = 'buffered'
         RETURNING ${COLUMNS}`,
      )
      .all(scope.tenantId, sessionId) as EpisodeRow[];
    return rows.map(toEpisode).sort((a, b) => a.seq - b.seq);
  }

  async idleSessions(before: string, limit: number): Promise<{ tenantId: string; sessionId: string }[]> {
    const rows = this.#sql
      .get(
        `SELECT e.tenant_id AS "tenantId", e.session_id AS "sessionId", max(e.recorded_at) AS last
         FROM episodes e JOIN sessions s ON s.tenant_id = e.tenant_id AND s.id = e.session_id
         WHERE s.last_seen_at < ?
         GROUP BY e.tenant_id, e.session_id
         HAVING max(e.recorded_at) < ?
           AND sum(CASE WHEN e.state = 'buffered' OR (e.state = 'evicted' AND e.reviewed = 0) THEN 1 ELSE 0 END) > 0
         ORDER BY last LIMIT ?`,
      )
      .all(before, before, limit) as { tenantId: string; sessionId: string }[];
    return rows.map(({ tenantId, sessionId }) => ({ tenantId, sessionId }));
  }

  async unreviewed(scope: RequestScope, sessionId: string): Promise<Episode[]> {
    return this.#select("state = 'evicted' AND reviewed = 0", scope, sessionId);
  }

  async repeats(scope: RequestScope, sessionId: string, digest: string): Promise<Episode[]> {
    return this.#select('digest = ?', scope, sessionId, digest);
  }

  async link(
    scope: RequestScope,
    sessionId: string,
    ids: string[],
    memory: { id: string; reason: string },
  ): Promise<number> {
    if (ids.length === 0) return 0;
    const result = this.#sql
      .get(
        `UPDATE episodes SET memory_id = ?, consolidation_reason = ?,
           state = CASE WHEN state = 'buffered' THEN 'buffered' ELSE 'consolidated' END,
           reviewed = CASE WHEN state = 'buffered' THEN reviewed ELSE 1 END
         WHERE tenant_id = ? AND session_id = ? AND memory_id IS NULL
           AND id IN (SELECT value FROM json_each(?))`,
      )
      .run(memory.id, memory.reason, scope.tenantId, sessionId, JSON.stringify(ids));
    return result.changes;
  }

  async markReviewed(scope: RequestScope, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    this.#sql
      .get(
        `UPDATE episodes SET reviewed = 1
         WHERE tenant_id = ? AND state <> 'buffered' AND id IN (SELECT value FROM json_each(?))`,
      )
      .run(scope.tenantId, JSON.stringify(ids));
  }

  async forMemory(scope: RequestScope, memoryId: string): Promise<Episode[]> {
    const rows = this.#sql
      .get(`SELECT ${COLUMNS} FROM episodes WHERE tenant_id = ? AND memory_id = ? ORDER BY session_id, seq`)
      .all(scope.tenantId, memoryId) as EpisodeRow[];
    return rows.map(toEpisode);
  }

  #select(where: string, scope: RequestScope, sessionId: string, ...args: unknown[]): Episode[] {
    const rows = this.#sql
      .get(`SELECT ${COLUMNS} FROM episodes WHERE tenant_id = ? AND session_id = ? AND ${where} ORDER BY seq`)
      .all(scope.tenantId, sessionId, ...args) as EpisodeRow[];
    return rows.map(toEpisode);
  }
}
