/** One statement slower than BRAIN_SLOW_QUERY_MS: its SQL (no bound values), how long, and when. */
export interface SlowQuery {
  sql: string;
  elapsedMs: number;
  /** ISO 8601 UTC. */
  createdAt: string;
}

/** The storage port of the slow-query log (`query_log`), on both engines. */
export interface QueryLogStore {
  append(rows: SlowQuery[]): Promise<void>;
  /** The slowest first when `order` is `slowest`, else the newest first; at most `limit`. */
  list(options: { limit: number; since?: string; order?: 'newest' | 'slowest' }): Promise<SlowQuery[]>;
  /** Deletes rows before `at`; returns how many. */
  purgeBefore(at: string): Promise<number>;
}
