import type { DeadLetter, JobRun } from '../modules/jobs/job-store.js';

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
