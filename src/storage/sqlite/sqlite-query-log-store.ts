import type Database from 'better-sqlite3';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { QueryLogStore, SlowQuery } from '../../modules/observability/query-log-store.js';
import { createSlowQueryLog, type SlowQueryLog } from '../../modules/observability/slow-query-log.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { observeStatements } from './statement-cache.js';

interface QueryLogRow {
  sql: string;
  elapsed_ms: number;
  created_at: string;
}

/**
 * The slow-query log (`query_log`, migration 8) on SQLite. Its statements are prepared with
 * `db.prepare`, not through the timed statement cache: recording a slow query must never time, and so
 * record, itself.
 */
export class SqliteQueryLogStore implements QueryLogStore {
  readonly #db: SqliteDatabase;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#db = db;
    guardStoreMethods<SqliteQueryLogStore>(
      this,
      { reads: ['list'], writes: ['append', 'purgeBefore'] },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  #statement(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  async append(rows: SlowQuery[]): Promise<void> {
    if (rows.length === 0) return;
    const insert = this.#statement('INSERT INTO query_log (sql, elapsed_ms, created_at) VALUES (?, ?, ?)');
    this.#db.transaction(() => {
      for (const row of rows) insert.run(row.sql, row.elapsedMs, row.createdAt);
    })();
  }

  async list(options: { limit: number; since?: string; order?: 'newest' | 'slowest' }): Promise<SlowQuery[]> {
    const order = options.order === 'slowest' ? 'elapsed_ms DESC, id DESC' : 'created_at DESC, id DESC';
    const where = options.since === undefined ? '' : 'WHERE created_at >= ?';
    const params = options.since === undefined ? [options.limit] : [options.since, options.limit];
    const rows = this.#statement(
      `SELECT sql, elapsed_ms, created_at FROM query_log ${where} ORDER BY ${order} LIMIT ?`,
    ).all(...params) as QueryLogRow[];
    return rows.map((r) => ({ sql: r.sql, elapsedMs: r.elapsed_ms, createdAt: r.created_at }));
  }

  async purgeBefore(at: string): Promise<number> {
    return this.#statement('DELETE FROM query_log WHERE created_at < ?').run(at).changes;
  }
}

/**
 * The slow-query log of a connection: its store, and (with a threshold above 0) the log that times
 * every statement prepared on `db` from now on. Call it before the stores are built.
 */
export function sqliteSlowQueryLog(
  db: SqliteDatabase,
  options: { thresholdMs?: number | undefined; logger: Logger; file?: SqliteFileGuard },
): { store: SqliteQueryLogStore; log: SlowQueryLog | null } {
  const store = new SqliteQueryLogStore(db, { logger: options.logger, file: options.file });
  if (!options.thresholdMs) return { store, log: null };
  const log = createSlowQueryLog({ store, logger: options.logger, thresholdMs: options.thresholdMs });
  observeStatements(db, log);
  return { store, log };
}
