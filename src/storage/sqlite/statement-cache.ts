import type Database from 'better-sqlite3';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * Prepared statements by SQL text. Queries are built from a small set of filter shapes, so caching by
 * text turns every repeated query into a prepared-statement call without a compile on the hot path.
 */
export class StatementCache {
  readonly #db: SqliteDatabase;
  readonly #max: number;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(db: SqliteDatabase, max = 512) {
    this.#db = db;
    this.#max = max;
  }

  get(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      // A burst of unusual shapes must not grow the cache without bound; start over instead.
      if (this.#statements.size >= this.#max) this.#statements.clear();
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
