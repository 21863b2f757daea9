import { type Logger, silentLogger } from '../../core/logger.js';
import type {
  DeadLetter,
  JobHistory,
  JobLease,
  JobRun,
  JobStore,
  LeaseRequest,
} from '../../modules/jobs/job-store.js';
import {
  type LeaseRow,
  type LetterRow,
  RUN_COLUMNS,
  type RunRow,
  runValues,
  toDeadLetter,
  toJobLease,
  toJobRun,
} from '../job-rows.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

/**
 * The scheduler's tables on SQLite. A lease is taken by one upsert whose WHERE admits only a free lease
 * and an unrun slot; SQLite serialises writers on the file, so of the processes sharing it exactly one
 * sees its change count be 1.
 */
export class SqliteJobStore implements JobStore {
  readonly #sql: StatementCache;

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#sql = new StatementCache(db);
    guardStoreMethods<SqliteJobStore>(
      this,
      {
        reads: ['leases', 'history', 'recentRuns', 'deadLetters', 'deadLetter', 'pendingDeadLetters'],
        writes: [
          'acquire',
          'renew',
          'release',
          'recordRun',
          'pruneRuns',
          'addDeadLetter',
          'claimRetry',
          'setRetryOutcome',
        ],
      },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async acquire(r: LeaseRequest): Promise<boolean> {
    const { changes } = this.#sql
      .get(
        `INSERT INTO job_leases (job, holder, acquired_at, expires_at, slot) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at,
           expires_at = excluded.expires_at, slot = coalesce(excluded.slot, job_leases.slot)
         WHERE (job_leases.holder IS NULL OR job_leases.expires_at <= ?)
           AND (excluded.slot IS NULL OR job_leases.slot IS NULL OR job_leases.slot < excluded.slot)`,
      )
      .run(r.job, r.holder, r.now, r.expiresAt, r.slot, r.now);
    return changes === 1;
  }

  async renew(job: string, holder: string, now: string, expiresAt: string): Promise<boolean> {
    const { changes } = this.#sql
      .get('UPDATE job_leases SET expires_at = ? WHERE job = ? AND holder = ? AND expires_at > ?')
      .run(expiresAt, job, holder, now);
    return changes === 1;
  }

  async release(job: string, holder: string, now: string): Promise<void> {
    this.#sql
      .get('UPDATE job_leases SET holder = NULL, expires_at = ? WHERE job = ? AND holder = ?')
      .run(now, job, holder);
  }

  async leases(now: string): Promise<JobLease[]> {
    const rows = this.#sql
      .get(
        `SELECT job, holder, acquired_at, expires_at FROM job_leases
         WHERE holder IS NOT NULL AND expires_at > ? ORDER BY job`,
      )
      .all(now) as LeaseRow[];
    return rows.map(toJobLease);
  }

  async recordRun(run: JobRun): Promise<void> {
    this.#sql
      .get(`INSERT INTO job_runs (${RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(...runValues(run));
  }

  async history(): Promise<JobHistory[]> {
    const last = this.#sql
      .get(
        `SELECT ${RUN_COLUMNS} FROM job_runs WHERE id IN (SELECT max(id) FROM job_runs GROUP BY job)
         ORDER BY job`,
      )
      .all() as RunRow[];
    const success = this.#sql
      .get(
        `SELECT ${RUN_COLUMNS} FROM job_runs WHERE id IN
           (SELECT max(id) FROM job_runs WHERE outcome = 'succeeded' GROUP BY job)`,
      )
      .all() as RunRow[];
    const ok = new Map(success.map((r) => [r.job, toJobRun(r)]));
    return last.map((r) => ({ job: r.job, last: toJobRun(r), lastSuccess: ok.get(r.job) ?? null }));
  }

  async recentRuns(limit: number, job?: string): Promise<JobRun[]> {
    const rows = (
      job === undefined
        ? this.#sql.get(`SELECT ${RUN_COLUMNS} FROM job_runs ORDER BY id DESC LIMIT ?`).all(limit)
        : this.#sql
            .get(`SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT ?`)
            .all(job, limit)
    ) as RunRow[];
    return rows.map(toJobRun);
  }

  async pruneRuns(before: string): Promise<number> {
    return this.#sql.get('DELETE FROM job_runs WHERE finished_at < ?').run(before).changes;
  }

  async addDeadLetter(l: Omit<DeadLetter, 'retriedAt' | 'retryOutcome'>): Promise<void> {
    this.#sql
      .get('INSERT INTO dead_letter (id, job, attempts, error, failed_at) VALUES (?, ?, ?, ?, ?)')
      .run(l.id, l.job, l.attempts, l.error, l.failedAt);
  }

  async deadLetters(options: { pending: boolean; limit: number }): Promise<DeadLetter[]> {
    const where = options.pending ? 'WHERE retried_at IS NULL' : '';
    const rows = this.#sql
      .get(`SELECT * FROM dead_letter ${where} ORDER BY failed_at DESC, id DESC LIMIT ?`)
      .all(options.limit) as LetterRow[];
    return rows.map(toDeadLetter);
  }

  async deadLetter(id: string): Promise<DeadLetter | null> {
    const row = this.#sql.get('SELECT * FROM dead_letter WHERE id = ?').get(id) as LetterRow | undefined;
    return row ? toDeadLetter(row) : null;
  }

  async claimRetry(id: string, at: string): Promise<boolean> {
    return (
      this.#sql.get('UPDATE dead_letter SET retried_at = ? WHERE id = ? AND retried_at IS NULL').run(at, id)
        .changes === 1
    );
  }

  async setRetryOutcome(id: string, outcome: string): Promise<void> {
    this.#sql.get('UPDATE dead_letter SET retry_outcome = ? WHERE id = ?').run(outcome, id);
  }

  async pendingDeadLetters(): Promise<number> {
    const row = this.#sql.get('SELECT count(*) AS n FROM dead_letter WHERE retried_at IS NULL').get() as {
      n: number;
    };
    return row.n;
  }
}
