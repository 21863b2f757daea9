import type { Logger } from '../../core/logger.js';
import type { Memory } from '../../modules/memory/memory-types.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { sqliteCodeOf } from './sqlite-errors.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { prepareStatement } from './statement-cache.js';

/** An access bump waiting to be written. */
interface PendingTouch {
  tenantId: string;
  id: string;
  count: number;
  at: string;
}

/** Longest an access bump waits before it is written. */
const TOUCH_FLUSH_MS = 250;
/** Pending bumps that trigger a write at once. */
const TOUCH_FLUSH_MAX = 2000;

const keyOf = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;

/**
 * The access counts of recalled memories (access_count + 1, accessed_at = now), written in batches
 * within TOUCH_FLUSH_MS (or at once past TOUCH_FLUSH_MAX pending), not in the recall: a write
 * transaction per recall would cost more than the recall's reads and fill the WAL with rewrites of the
 * same rows. Reads flush first and show what is still pending ({@link overlay}); closing flushes. A
 * crash loses at most that fraction of a second of access counts, never a memory. No flush but
 * closing waits for the write lock: while another process holds it, the bumps stay pending, reads show
 * them merged in, and the timer retries.
 */
export class SqliteAccessCounts {
  readonly #db: SqliteDatabase;
  readonly #logger: Logger;
  readonly #file: SqliteFileGuard | undefined;
  readonly #touchOne;
  /** The connection's busy timeout, restored after a flush that must not wait for the lock. */
  readonly #busyTimeoutMs: number;
  /** Bumps of recent recalls not yet written, by tenant and id. */
  readonly #pending = new Map<string, PendingTouch>();
  #timer: NodeJS.Timeout | null = null;

  constructor(db: SqliteDatabase, logger: Logger, file?: SqliteFileGuard) {
    this.#db = db;
    this.#logger = logger;
    this.#file = file;
    this.#touchOne = prepareStatement(
      db,
      `UPDATE memories SET access_count = access_count + ?,
         accessed_at = CASE WHEN accessed_at IS NULL OR accessed_at < ? THEN ? ELSE accessed_at END
       WHERE id = ? AND tenant_id = ?`,
    );
    this.#busyTimeoutMs = Number(db.pragma('busy_timeout', { simple: true }));
  }

  /** Records one access of each memory at `now`. */
  add(tenantId: string, ids: string[], now: string): void {
    for (const id of ids) {
      const key = keyOf(tenantId, id);
      const pending = this.#pending.get(key);
      if (pending) {
        pending.count++;
        if (now > pending.at) pending.at = now;
      } else this.#pending.set(key, { tenantId, id, count: 1, at: now });
    }
    if (this.#pending.size >= TOUCH_FLUSH_MAX) this.tryFlush();
    else this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.tryFlush();
    }, TOUCH_FLUSH_MS);
    this.#timer.unref();
  }

  /**
   * Writes the pending bumps only if the write lock is free now (busy timeout 0 for this one flush):
   * a read, a recall or the timer must not fail, nor block the event loop for the busy timeout, because
   * another process holds the lock. Trigger: the lock is held. Outcome: they stay pending, reads merge
   * them in ({@link overlay}), and the timer retries. Other failures (disk full, file gone) are logged
   * and retried with the next recall or read.
   */
  tryFlush(): void {
    if (this.#pending.size === 0 || !this.#db.open || this.#file?.failed) return;
    this.#db.exec('PRAGMA busy_timeout = 0');
    try {
      this.flush();
    } catch (error) {
      const code = sqliteCodeOf(error);
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) this.#schedule();
      else this.#logger.warn({ err: error }, 'writing access counts failed; retrying with the next recall');
    } finally {
      this.#db.exec(`PRAGMA busy_timeout = ${this.#busyTimeoutMs}`);
    }
  }

  /** A memory as read plus the access bumps still pending for it: the port's reads show every touch. */
  overlay(tenantId: string, memory: Memory): Memory {
    if (this.#pending.size === 0) return memory;
    const pending = this.#pending.get(keyOf(tenantId, memory.id));
    if (!pending) return memory;
    const seen = memory.accessed_at;
    return {
      ...memory,
      access_count: memory.access_count + pending.count,
      accessed_at: seen === null || pending.at > seen ? pending.at : seen,
    };
  }

  /**
   * Writes every pending access bump in one transaction, waiting for the write lock up to the busy
   * timeout (closing calls this). On failure they stay pending and the error is thrown.
   */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#pending.size === 0 || !this.#db.open) return;
    const entries = [...this.#pending.values()];
    this.#pending.clear();
    try {
      this.#db
        .transaction(() => {
          for (const t of entries) this.#touchOne.run(t.count, t.at, t.at, t.id, t.tenantId);
        })
        .immediate();
    } catch (error) {
      for (const t of entries) {
        const key = keyOf(t.tenantId, t.id);
        const newer = this.#pending.get(key);
        this.#pending.set(
          key,
          // biome-ignore lint/complexity/useMathMinMax: ISO timestamps are strings; Math.max would make NaN.
          newer ? { ...t, count: t.count + newer.count, at: newer.at > t.at ? newer.at : t.at } : t,
        );
      }
      throw error;
    }
  }
}
