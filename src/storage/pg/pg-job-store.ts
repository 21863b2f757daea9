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
import type { PgDatabase } from './pg-database.js';

/**
 * The scheduler's tables on PostgreSQL, shared by every replica. A lease is one upsert whose WHERE
 * admits only a free lease and an unrun slot: the row lock makes concurrent replicas queue, and the one
 * whose change comes back (RETURNING) holds it.
 */
export class PgJobStore implements JobStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async acquire(r: LeaseRequest): Promise<boolean> {
    const { rows } = await this.#db.query(
      `INSERT INTO job_leases (job, holder, acquired_at, expires_at, slot) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at,
         expires_at = excluded.expires_at, slot = coalesce(excluded.slot, job_leases.slot)
       WHERE (job_leases.holder IS NULL OR job_leases.expires_at <= $3)
         AND (excluded.slot IS NULL OR job_leases.slot IS NULL OR job_leases.slot < excluded.slot)
       RETURNING job`,
      [r.job, r.holder, r.now, r.expiresAt, r.slot],
      this.#db.primary,
    );
    return rows.length === 1;
  }

  async renew(job: string, holder: string, now: string, expiresAt: string): Promise<boolean> {
    const { rowCount } = await this.#db.query(
      'UPDATE job_leases SET expires_at = $1 WHERE job = $2 AND holder = $3 AND expires_at > $4',
      [expiresAt, job, holder, now],
      this.#db.primary,
    );
    return rowCount === 1;
  }

  async release(job: string, holder: string, now: string): Promise<void> {
    await this.#db.query(
      'UPDATE job_leases SET holder = NULL, expires_at = $1 WHERE job = $2 AND holder = $3',
      [now, job, holder],
      this.#db.primary,
    );
  }

  async leases(now: string): Promise<JobLease[]> {
    const { rows } = await this.#db.query<LeaseRow>(
      `SELECT job, holder, acquired_at, expires_at FROM job_leases
       WHERE holder IS NOT NULL AND expires_at > $1 ORDER BY job`,
      [now],
      this.#db.primary,
    );
    return rows.map(toJobLease);
  }

  async recordRun(run: JobRun): Promise<void> {
    await this.#db.query(
      `INSERT INTO job_runs (${RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      runValues(run),
      this.#db.primary,
    );
  }

  async history(): Promise<JobHistory[]> {
    const { rows } = await this.#db.query<RunRow>(
      `SELECT DISTINCT ON (job) ${RUN_COLUMNS} FROM job_runs ORDER BY job, id DESC`,
      [],
      this.#db.primary,
    );
    const success = await this.#db.query<RunRow>(
      `SELECT DISTINCT ON (job) ${RUN_COLUMNS} FROM job_runs WHERE outcome = 'succeeded'
       ORDER BY job, id DESC`,
      [],
      this.#db.primary,
    );
    const ok = new Map(success.rows.map((r) => [r.job, toJobRun(r)]));
    return rows.map((r) => ({
      job: r.job,
      last: toJobRun(r),
      lastSuccess: ok.get(r.job) ?? null,
    }));
  }

  async recentRuns(limit: number, job?: string): Promise<JobRun[]> {
    const { rows } =
      job === undefined
        ? await this.#db.query(
            `SELECT ${RUN_COLUMNS} FROM job_runs ORDER BY id DESC LIMIT $1`,
            [limit],
            this.#db.primary,
          )
        : await this.#db.query(
            `SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = $1 ORDER BY id DESC LIMIT $2`,
            [job, limit],
            this.#db.primary,
          );
    return rows.map((r) => toJobRun(r as RunRow));
  }

  async pruneRuns(before: string): Promise<number> {
    const { rowCount } = await this.#db.query(
      'DELETE FROM job_runs WHERE finished_at < $1',
      [before],
      this.#db.primary,
    );
    return rowCount ?? 0;
  }

  async addDeadLetter(l: Omit<DeadLetter, 'retriedAt' | 'retryOutcome'>): Promise<void> {
    await this.#db.query(
      'INSERT INTO dead_letter (id, job, attempts, error, failed_at) VALUES ($1, $2, $3, $4, $5)',
      [l.id, l.job, l.attempts, l.error, l.failedAt],
      this.#db.primary,
    );
  }

  async deadLetters(options: { pending: boolean; limit: number }): Promise<DeadLetter[]> {
    const where = options.pending ? 'WHERE retried_at IS NULL' : '';
    const { rows } = await this.#db.query(
      `SELECT * FROM dead_letter ${where} ORDER BY failed_at DESC, id DESC LIMIT $1`,
      [options.limit],
      this.#db.primary,
    );
    return rows.map((r) => toDeadLetter(r as LetterRow));
  }

  async deadLetter(id: string): Promise<DeadLetter | null> {
    const { rows } = await this.#db.query('SELECT * FROM dead_letter WHERE id = $1', [id], this.#db.primary);
    return rows[0] ? toDeadLetter(rows[0] as LetterRow) : null;
  }

  async claimRetry(id: string, at: string): Promise<boolean> {
    const { rowCount } = await this.#db.query(
      'UPDATE dead_letter SET retried_at = $1 WHERE id = $2 AND retried_at IS NULL',
      [at, id],
      this.#db.primary,
    );
    return rowCount === 1;
  }

  async setRetryOutcome(id: string, outcome: string): Promise<void> {
    await this.#db.query(
      'UPDATE dead_letter SET retry_outcome = $1 WHERE id = $2',
      [outcome, id],
      this.#db.primary,
    );
  }

  async pendingDeadLetters(): Promise<number> {
    const { rows } = await this.#db.query<{ n: string }>(
      'SELECT count(*) AS n FROM dead_letter WHERE retried_at IS NULL',
      [],
      this.#db.primary,
    );
    return Number(rows[0]?.n ?? 0);
  }
}
