/** What started a run: its cron slot, an operator (`brain jobs run`), or a dead letter's retry. */
export type JobTrigger = 'schedule' | 'manual' | 'retry';

/** How a run ended. `skipped`: the job decided there was nothing to do (a vacuum done recently). */
export type JobOutcome = 'succeeded' | 'failed' | 'skipped';

/** One finished run of a job, as recorded (times ISO 8601 UTC). */
export interface JobRun {
  job: string;
  /** The process that ran it (`host:pid:…`). */
  holder: string;
  trigger: JobTrigger;
  /** Tries it took: 1 when the first one settled it. */
  attempts: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  outcome: JobOutcome;
  /** What the job reported (`brain_20261203_090000.db.gz, 12 MiB`) or the last error. */
  message: string;
}

/** A job's lease: who runs it now, and until when the lease holds without a renewal. */
export interface JobLease {
  job: string;
  holder: string;
  acquiredAt: string;
  expiresAt: string;
}

/** Per job: its newest run and its newest successful run (null when there is none). */
export interface JobHistory {
  job: string;
  last: JobRun | null;
  lastSuccess: JobRun | null;
}

/** A run that failed every retry, kept until an operator retries it. */
export interface DeadLetter {
  id: string;
  job: string;
  attempts: number;
  error: string;
  failedAt: string;
  retriedAt: string | null;
  /** How the retry ended (`succeeded`, `failed: …`), or null while not retried. */
  retryOutcome: string | null;
}

/** Asking for a job's lease at `now`, to hold for `ttlMs` unless renewed. */
export interface LeaseRequest {
  job: string;
  holder: string;
  now: string;
  expiresAt: string;
  /**
   * The cron slot (its scheduled time, ISO) this run is for: a slot already run, or being run, by any
   * process is refused, so a replica whose timer fires late never runs it twice. Null: a manual run.
   */
  slot: string | null;
}

/**
 * The scheduler's storage port, shared by every process and replica on one store (the tables
 * job_leases, job_runs and dead_letter). Jobs are server-wide, not per tenant. `acquire` is atomic: of
 * concurrent requests for one job's free lease, exactly one gets it.
 */
export interface JobStore {
  /** Takes the lease when it is free (never taken, released, or expired) and the slot not yet run. */
  acquire(request: LeaseRequest): Promise<boolean>;
  /** Extends a held lease; false when this holder lost it (it expired and another took it). */
  renew(job: string, holder: string, now: string, expiresAt: string): Promise<boolean>;
  /** Frees a held lease (the slot stays recorded, so it is not run again). */
  release(job: string, holder: string, now: string): Promise<void>;
  /** Leases held now (not expired at `now`). */
  leases(now: string): Promise<JobLease[]>;
  recordRun(run: JobRun): Promise<void>;
  /** The newest and newest successful run of each job that has run. */
  history(): Promise<JobHistory[]>;
  /** Newest first, at most `limit`, of one job or of all. */
  recentRuns(limit: number, job?: string): Promise<JobRun[]>;
  /** Deletes runs finished before `before`; returns how many. */
  pruneRuns(before: string): Promise<number>;
  addDeadLetter(letter: Omit<DeadLetter, 'retriedAt' | 'retryOutcome'>): Promise<void>;
  /** Newest first; `pending` only the ones not retried. */
  deadLetters(options: { pending: boolean; limit: number }): Promise<DeadLetter[]>;
  deadLetter(id: string): Promise<DeadLetter | null>;
  /**
   * Claims a letter for its retry: false when it was already retried (a retry started from two places
   * at once runs once).
   */
  claimRetry(id: string, at: string): Promise<boolean>;
  /** Records how a claimed retry ended. */
  setRetryOutcome(id: string, outcome: string): Promise<void>;
  /** Letters not retried. */
  pendingDeadLetters(): Promise<number>;
}
