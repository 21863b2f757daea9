import type { Logger } from '../../core/logger.js';
import type { PgDatabase } from './pg-database.js';

/** Rows written before a table's statistics are renewed: at least this many… */
const MIN_ROWS = 500;
/** …and at least this share of the rows its statistics last counted. */
const GROWTH = 0.2;

/**
 * Keeps the planner's statistics of a fast-growing table current. Autovacuum analyzes a table on its
 * own clock (a minute apart at best), and until then a young table has none: PostgreSQL then takes
 * `tenant_id = $1` for a rare value and plans lookups by the tenant alone, reading the tenant's every
 * row where a unique or hash index would have found one (a batch of 1,000 writes into 19,000 memories
 * took 12.7 s; an update by id read the tenant through `memories_hash`). This analyzes the table
 * (`ANALYZE (SKIP_LOCKED)`: one replica at a time, never blocking a write) in the background once the
 * rows written since its last statistics reach a fifth of what they counted (at least 500): a
 * geometric schedule, ~25 analyses on the way to 100,000 rows and none for a store at rest.
 */
export class PgTableStatistics {
  readonly #db: PgDatabase;
  readonly #logger: Logger;
  readonly #table: string;
  /** Rows written since the last statistics, and what those counted (null: not read yet). */
  #since = 0;
  #counted: number | null = null;
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(db: PgDatabase, logger: Logger, table: string) {
    this.#db = db;
    this.#logger = logger;
    this.#table = table;
  }

  /** `rows` rows were written to the table: renews its statistics in the background when due. */
  wrote(rows: number): void {
    if (rows <= 0) return;
    this.#since += rows;
    if (this.#running || this.#closed || !this.#due()) return;
    this.#running = this.#renew()
      .catch((error) => this.#logger.warn({ err: error, table: this.#table }, 'could not analyze the table'))
      .finally(() => {
        this.#running = null;
      });
  }

  #due(): boolean {
    return this.#since >= Math.max(MIN_ROWS, GROWTH * (this.#counted ?? 0));
  }

  async #renew(): Promise<void> {
    if (this.#counted === null) {
      this.#counted = await this.#rowsCounted();
      if (!this.#due()) return;
    }
    this.#since = 0;
    await this.#db.query(`ANALYZE (SKIP_LOCKED) ${this.#table}`, [], this.#db.primary);
    this.#counted = await this.#rowsCounted();
  }

  /** The rows the table's statistics counted (pg_class.reltuples; 0 before any). */
  async #rowsCounted(): Promise<number> {
    const { rows } = await this.#db.query<{ n: number }>(
      'SELECT greatest(reltuples, 0)::float8 AS n FROM pg_class WHERE oid = $1::regclass',
      [this.#table],
      this.#db.primary,
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Waits for an analysis in flight; later writes start none. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
  }
}
