import type { Logger } from '../../core/logger.js';
import type { QueryLogStore, SlowQuery } from '../../modules/observability/query-log-store.js';
import { createSlowQueryLog, type SlowQueryLog } from '../../modules/observability/slow-query-log.js';
import type { PgDatabase } from './pg-database.js';

interface QueryLogRow {
  sql: string;
  elapsed_ms: number;
  created_at: string;
}

/**
 * The slow-query log (`query_log`, migration 5) on PostgreSQL, on the primary. Its statements run
 * untimed: recording a slow query must never time, and so record, itself.
 */
export class PgQueryLogStore implements QueryLogStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async append(rows: SlowQuery[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#db.untimedQuery(
      `INSERT INTO query_log (sql, elapsed_ms, created_at)
       SELECT * FROM unnest($1::text[], $2::float8[], $3::text[])`,
      [rows.map((r) => r.sql), rows.map((r) => r.elapsedMs), rows.map((r) => r.createdAt)],
    );
  }

  async list(options: { limit: number; since?: string; order?: 'newest' | 'slowest' }): Promise<SlowQuery[]> {
    const order = options.order === 'slowest' ? 'elapsed_ms DESC, id DESC' : 'created_at DESC, id DESC';
    const where = options.since === undefined ? '' : 'WHERE created_at >= $2';
    const params = options.since === undefined ? [options.limit] : [options.limit, options.since];
    const { rows } = await this.#db.untimedQuery<QueryLogRow>(
      `SELECT sql, elapsed_ms, created_at FROM query_log ${where} ORDER BY ${order} LIMIT $1`,
      params,
    );
    return rows.map((r) => ({ sql: r.sql, elapsedMs: Number(r.elapsed_ms), createdAt: r.created_at }));
  }

  async purgeBefore(at: string): Promise<number> {
    const { rowCount } = await this.#db.untimedQuery('DELETE FROM query_log WHERE created_at < $1', [at]);
    return rowCount ?? 0;
  }
}

/** The slow-query log of a database: its store, and (with a threshold above 0) the log timing `db`. */
export function pgSlowQueryLog(
  db: PgDatabase,
  options: { thresholdMs?: number | undefined; logger: Logger },
): { store: PgQueryLogStore; log: SlowQueryLog | null } {
  const store = new PgQueryLogStore(db);
  if (!options.thresholdMs) return { store, log: null };
  const log = createSlowQueryLog({ store, logger: options.logger, thresholdMs: options.thresholdMs });
  db.observe(log);
  return { store, log };
}
