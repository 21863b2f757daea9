import { type Clock, systemClock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { QueryLogStore, SlowQuery } from './query-log-store.js';

/** What a storage driver reports each finished statement to: its SQL text (never its values) and time. */
export interface StatementObserver {
  observe(sql: string, elapsedMs: number): void;
}

/** The slow-query log of one Storage: observes statements, records the slow ones, purges old rows. */
export interface SlowQueryLog extends StatementObserver {
  readonly thresholdMs: number;
  /** Writes what is buffered now; resolves when it is written (or dropped on a failure, with a warning). */
  flush(): Promise<void>;
  /** Stops the purge timer, writes what is buffered and ignores statements from then on. Idempotent. */
  close(): Promise<void>;
}

export interface SlowQueryLogOptions {
  store: QueryLogStore;
  logger: Logger;
  /** BRAIN_SLOW_QUERY_MS: statements slower than this are recorded; must be above 0 (0 means no log). */
  thresholdMs: number;
  /** Most entries waiting to be written; past it they are dropped, with one warning. Default 1000. */
  maxBuffered?: number;
  /** Rows older than this are purged. Default 7 days. */
  retentionMs?: number;
  /** How often old rows are purged, the first time one minute after start. Default hourly. */
  purgeEveryMs?: number;
  clock?: Clock;
}

/** What is logged and kept of a statement's text: enough to find it in the code. */
const LOGGED_SQL_CHARS = 500;
const STORED_SQL_CHARS = 4000;
const DAY_MS = 86_400_000;

/**
 * The slow-query log: a statement slower than the threshold is logged at warn at once and buffered;
 * the buffer is written to `query_log` on a later turn of the event loop, so never inside the
 * caller's transaction (a SQLite transaction is synchronous; PostgreSQL writes on another pooled
 * connection). The store writes through its own untimed path, so recording never observes itself.
 * Values bound to a statement are never seen here: memory content stays out of the log.
 */
export function createSlowQueryLog(options: SlowQueryLogOptions): SlowQueryLog {
  const { store, logger, thresholdMs } = options;
  if (!(thresholdMs > 0)) throw new Error(`slow-query threshold must be above 0 ms, got ${thresholdMs}`);
  const maxBuffered = options.maxBuffered ?? 1000;
  const retentionMs = options.retentionMs ?? 7 * DAY_MS;
  const clock = options.clock ?? systemClock;
  let buffer: SlowQuery[] = [];
  let dropping = false;
  let scheduled = false;
  let writing: Promise<void> | null = null;
  let closed = false;

  const write = async (): Promise<void> => {
    while (writing) await writing;
    if (buffer.length === 0) return;
    const batch = buffer;
    buffer = [];
    dropping = false;
    writing = store
      .append(batch)
      .catch((error) =>
        logger.warn({ err: error, dropped: batch.length }, 'could not record slow queries in query_log'),
      )
      .finally(() => {
        writing = null;
      });
    await writing;
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void write();
    }).unref();
  };

  const purge = () =>
    store
      .purgeBefore(new Date(clock.now().getTime() - retentionMs).toISOString())
      .catch((error) => logger.warn({ err: error }, 'could not purge old rows of query_log'));
  let purgeTimer: NodeJS.Timeout = setTimeout(() => {
    void purge();
    purgeTimer = setInterval(() => void purge(), options.purgeEveryMs ?? 3_600_000).unref();
  }, 60_000).unref();

  return {
    thresholdMs,
    observe(sql, elapsedMs) {
      if (closed || elapsedMs <= thresholdMs) return;
      const text = sql.replace(/\s+/g, ' ').trim();
      const elapsed = Math.round(elapsedMs * 1000) / 1000;
      logger.warn({ sql: text.slice(0, LOGGED_SQL_CHARS), elapsed_ms: elapsed }, 'slow query');
      if (buffer.length >= maxBuffered) {
        // A burst the store cannot keep up with: the log lines above still name every statement.
        if (!dropping)
          logger.warn({ max: maxBuffered }, 'slow-query buffer full: dropping entries until it is written');
        dropping = true;
        return;
      }
      buffer.push({
        sql: text.slice(0, STORED_SQL_CHARS),
        elapsedMs: elapsed,
        createdAt: clock.now().toISOString(),
      });
      schedule();
    },
    flush: write,
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(purgeTimer);
      clearInterval(purgeTimer);
      await write();
    },
  };
}
