import type Database from 'better-sqlite3';
import type { SqliteDatabase } from './sqlite-database.js';
import { sqliteCodeOf } from './sqlite-errors.js';

/** Most callers one transaction takes: a longer backlog goes in the next, right after. */
export const GROUP_COMMIT_MAX = 128;
/**
 * While another process holds the write lock, the lock is tried again on the next turn of the event
 * loop for this long, then every millisecond (a timer) up to the busy timeout. Another process's write
 * transaction holds the lock for a fraction of a millisecond to a few; SQLite's own busy handler
 * sleeps 1, 2, 5, 10 … ms between tries and blocks this process meanwhile.
 */
const SPIN_MS = 2;

interface Waiter {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export interface GroupCommitOptions {
  /** How long a batch waits for another process's write lock before its callers get SQLITE_BUSY. */
  busyTimeoutMs: number;
}

/**
 * Group commit for one connection: the write transactions asked for in the same turn of the event loop
 * (or while the lock is held by another process) run in one `BEGIN IMMEDIATE … COMMIT`, each in its
 * own SAVEPOINT. A caller whose work throws is rolled back alone and gets its own error; the others are
 * answered only once the shared COMMIT has returned, so an acknowledged write is committed (WAL,
 * synchronous NORMAL: it survives the process being killed). One transaction per batch instead of per
 * request also means one lock hand-over between processes per batch, and the lock is waited for
 * without blocking: new requests keep arriving and join the batch.
 */
export class SqliteGroupCommit {
  readonly #db: SqliteDatabase;
  readonly #busyTimeoutMs: number;
  readonly #begin: Database.Statement;
  readonly #commit: Database.Statement;
  readonly #rollback: Database.Statement;
  readonly #savepoint: Database.Statement;
  readonly #release: Database.Statement;
  readonly #rollbackTo: Database.Statement;
  #pending: Waiter[] = [];
  #scheduled = false;
  /** A write ran at once in this turn of the event loop: the next ones in it wait for the batch. */
  #ranThisTurn = false;
  /** When the current batch first found the lock held (performance.now()), null when it did not. */
  #blockedSince: number | null = null;

  constructor(db: SqliteDatabase, options: GroupCommitOptions) {
    this.#db = db;
    this.#busyTimeoutMs = options.busyTimeoutMs;
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#savepoint = db.prepare('SAVEPOINT brain_group_commit');
    this.#release = db.prepare('RELEASE brain_group_commit');
    this.#rollbackTo = db.prepare('ROLLBACK TO brain_group_commit');
  }

  /**
   * Runs `work` (synchronous, no awaits) inside the next shared write transaction and resolves with what
   * it returned once that transaction committed; rejects with what it threw (its changes rolled back),
   * or with the COMMIT's or the lock's error (SQLITE_BUSY past the busy timeout) when nothing of the
   * batch was written.
   */
  run<T>(work: () => T): Promise<T> {
    // Trigger: called from inside a transaction of this connection (a caller composing writes).
    // Reason: deferring would take the work out of that transaction. Outcome: it runs now, in a savepoint.
    if (this.#db.inTransaction) {
      try {
        return Promise.resolve(this.#db.transaction(work)());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ work, resolve: resolve as (value: unknown) => void, reject });
      // The first write of a turn, with nothing waiting, runs at once: a caller writing one at a time
      // waits for no turn of the event loop. Writes that come in the same turn after it are batched.
      if (!this.#ranThisTurn && !this.#scheduled && this.#pending.length === 1) {
        this.#ranThisTurn = true;
        setImmediate(() => {
          this.#ranThisTurn = false;
        });
        this.#flush();
        return;
      }
      this.#schedule(false);
    });
  }

  /** Callers waiting for the next transaction (tests and metrics). */
  get waiting(): number {
    return this.#pending.length;
  }

  #schedule(later: boolean): void {
    if (this.#scheduled || this.#pending.length === 0) return;
    this.#scheduled = true;
    const go = () => {
      this.#scheduled = false;
      this.#flush();
    };
    if (later) setTimeout(go, 1);
    else setImmediate(go);
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    if (!this.#db.open) {
      this.#failAll(new TypeError('The database connection is not open'));
      return;
    }
    if (!this.#tryBegin()) return;
    const batch = this.#pending.splice(0, GROUP_COMMIT_MAX);
    const done: { waiter: Waiter; value: unknown }[] = [];
    for (let i = 0; i < batch.length; i++) {
      const waiter = batch[i] as Waiter;
      const outcome = this.#runOne(waiter);
      if (outcome.ok) {
        done.push({ waiter, value: outcome.value });
        continue;
      }
      waiter.reject(outcome.error);
      // Trigger: the failure ended the whole transaction (SQLite rolls back on some errors, e.g. a full
      // disk). Reason: the work of the callers before it is gone too, and none of them was answered.
      // Outcome: they and the rest of the batch go first into the next transaction.
      if (!this.#db.inTransaction) {
        this.#pending.unshift(...done.map((d) => d.waiter), ...batch.slice(i + 1));
        this.#schedule(false);
        return;
      }
    }
    try {
      this.#commit.run();
    } catch (error) {
      if (this.#db.inTransaction) this.#rollback.run();
      for (const { waiter } of done) waiter.reject(error);
      this.#schedule(false);
      return;
    }
    for (const { waiter, value } of done) waiter.resolve(value);
    this.#schedule(false);
  }

  /** Its own savepoint: rolled back alone when it throws. */
  #runOne(waiter: Waiter): { ok: true; value: unknown } | { ok: false; error: unknown } {
    this.#savepoint.run();
    try {
      const value = waiter.work();
      this.#release.run();
      return { ok: true, value };
    } catch (error) {
      if (this.#db.inTransaction) {
        this.#rollbackTo.run();
        this.#release.run();
      }
      return { ok: false, error };
    }
  }

  /**
   * BEGIN IMMEDIATE without SQLite's sleeping busy handler. Trigger: another process holds the write
   * lock. Outcome: false, and the batch tries again soon (see SPIN_MS) while requests keep coming in;
   * past the busy timeout every waiting caller gets the SQLITE_BUSY error, as a transaction of its own
   * would (those that joined late included: the lock has been held for the whole timeout).
   */
  #tryBegin(): boolean {
    // Compiled each time, not a statement prepared once: SQLite applies PRAGMA busy_timeout when the
    // statement is compiled, so running a prepared one again would change nothing. Through exec, not
    // db.pragma, which builds a statement object and reads its rows: a quarter of the cost per write.
    this.#db.exec('PRAGMA busy_timeout = 0');
    try {
      this.#begin.run();
      this.#blockedSince = null;
      return true;
    } catch (error) {
      const code = sqliteCodeOf(error);
      if (!code.startsWith('SQLITE_BUSY') && !code.startsWith('SQLITE_LOCKED')) {
        this.#failAll(error);
        return false;
      }
      const now = performance.now();
      this.#blockedSince ??= now;
      const blocked = now - this.#blockedSince;
      if (blocked >= this.#busyTimeoutMs) {
        this.#blockedSince = null;
        this.#failAll(error);
        return false;
      }
      this.#schedule(blocked >= SPIN_MS);
      return false;
    } finally {
      this.#db.exec(`PRAGMA busy_timeout = ${this.#busyTimeoutMs}`);
    }
  }

  #failAll(error: unknown): void {
    const failed = this.#pending;
    this.#pending = [];
    for (const waiter of failed) waiter.reject(error);
  }
}

/** One group commit per connection: every store of a connection shares its write transactions. */
const groups = new WeakMap<SqliteDatabase, SqliteGroupCommit>();

/** The group commit of `db`, made on first use with the connection's own busy timeout. */
export function groupCommitFor(db: SqliteDatabase): SqliteGroupCommit {
  let group = groups.get(db);
  if (!group) {
    group = new SqliteGroupCommit(db, {
      busyTimeoutMs: Number(db.pragma('busy_timeout', { simple: true })),
    });
    groups.set(db, group);
  }
  return group;
}
