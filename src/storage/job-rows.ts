import type { DeadLetter, JobLease, JobRun } from '../modules/jobs/job-store.js';

/** The scheduler's rows as both drivers read them (times are ISO text on both engines). */
export interface RunRow {
  job: string;
  holder: string;
  trigger: JobRun['trigger'];
  attempts: number;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  outcome: JobRun['outcome'];
  message: string;
}

export interface LetterRow {
  id: string;
  job: string;
  attempts: number;
  error: string;
  failed_at: string;
  retried_at: string | null;
  retry_outcome: string | null;
}

export const RUN_COLUMNS =
  'job, holder, trigger, attempts, started_at, finished_at, duration_ms, outcome, message';

export function toJobRun(r: RunRow): JobRun {
  return {
    job: r.job,
    holder: r.holder,
    trigger: r.trigger,
    attempts: Number(r.attempts),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: Number(r.duration_ms),
    outcome: r.outcome,
    message: r.message,
  };
}

export function toDeadLetter(r: LetterRow): DeadLetter {
  return {
    id: r.id,
    job: r.job,
    attempts: Number(r.attempts),
    error: r.error,
    failedAt: r.failed_at,
    retriedAt: r.retried_at,
    retryOutcome: r.retry_outcome,
  };
}

export interface LeaseRow {
  job: string;
  holder: string;
  acquired_at: string;
  expires_at: string;
}

export function toJobLease(r: LeaseRow): JobLease {
  return { job: r.job, holder: r.holder, acquiredAt: r.acquired_at, expiresAt: r.expires_at };
}

/** A run's values in RUN_COLUMNS order. */
export function runValues(run: JobRun): (string | number)[] {
  return [
    run.job,
    run.holder,
    run.trigger,
    run.attempts,
    run.startedAt,
    run.finishedAt,
    run.durationMs,
    run.outcome,
    run.message,
  ];
}
