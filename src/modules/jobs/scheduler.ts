import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Cron } from 'croner';
import type { Clock } from '../../core/clock.js';
import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { JobOutcome, JobRun, JobStore, JobTrigger } from './job-store.js';

/** What a job reports: `skipped` when there was nothing to do, and a line for the history. */
export interface JobResult {
  outcome?: Exclude<JobOutcome, 'failed'>;
  message?: string;
}

export interface JobContext {
  /** Aborted when the process shuts down or the lease is lost: a long job stops at its next step. */
  signal: AbortSignal;
  /** 1 for the first try, 2 for the first retry, … */
  attempt: number;
  trigger: JobTrigger;
}

/** A recurring job: its name, its cron expression (`off`: never scheduled, still runnable by hand). */
export interface JobDefinition {
  name: string;
  cron: string;
  description: string;
  run(context: JobContext): Promise<JobResult | undefined>;
}

export interface SchedulerOptions {
  store: JobStore;
  jobs: JobDefinition[];
  clock: Clock;
  logger: Logger;
  /** The time zone the cron expressions are read in (IANA name). */
  timezone: string;
  /** Retries of a failing run before it lands in the dead letters. */
  retries: number;
  /** The first retry's delay; each next one doubles it (capped at an hour). */
  retryDelayMs: number;
  /** How long a lease holds without a renewal; renewed every third of it while the job runs. */
  leaseMs?: number;
  /** This process's name in leases and history; defaults to `host:pid:random`. */
  holder?: string;
  /** Told of every finished run (metrics). */
  onRun?: (run: JobRun) => void;
}

/** How a job stands, for `/health`, `brain jobs` and metrics. */
export interface JobStatus {
  name: string;
  cron: string;
  description: string;
  /** The next time its cron expression names (ISO), or null when the job is off. */
  nextRun: string | null;
  /** Whether this process is running it now. */
  running: boolean;
}

/** Runs at most this long between retries, however many there were. */
const MAX_RETRY_DELAY_MS = 3_600_000;
const DEFAULT_LEASE_MS = 60_000;

/** `host:pid:xxxx`: who holds a lease, readable by an operator. */
export function processHolder(): string {
  return `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

/** Sleeps `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * The in-server scheduler: croner fires each job at its cron times; the process that takes the job's
 * lease for that slot (its scheduled time) runs it, so of every process and replica on one store the
 * job runs once. A failing try is retried with exponential backoff while the lease is held (and
 * renewed); when every try failed the run is recorded failed and a dead letter is added, which an
 * operator retries with `brain dead-letter retry`. Every run is recorded in `job_runs`.
 */
export class Scheduler {
  readonly holder: string;
  readonly #o: SchedulerOptions;
  readonly #leaseMs: number;
  readonly #jobs: Map<string, JobDefinition>;
  readonly #crons = new Map<string, Cron>();
  /** Per job, the time its next firing is scheduled for. */
  readonly #expected = new Map<string, Date | null>();
  readonly #running = new Map<string, Promise<JobRun | null>>();
  readonly #stop = new AbortController();
  #started = false;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.holder = options.holder ?? processHolder();
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.#jobs = new Map(options.jobs.map((j) => [j.name, j]));
  }

  /** Schedules every job whose cron is not `off`. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const job of this.#jobs.values()) {
      if (job.cron === 'off') continue;
      const cron = new Cron(job.cron, { timezone: this.#o.timezone, protect: true }, (self: Cron) => {
        // The slot is the time this firing was scheduled for, the same on every replica whatever its
        // timer's delay; then the one after it is what the next firing is for.
        const slot = (this.#expected.get(job.name) ?? new Date()).toISOString();
        this.#expected.set(job.name, self.nextRun());
        void this.runSlot(job.name, slot);
      });
      this.#crons.set(job.name, cron);
      this.#expected.set(job.name, cron.nextRun());
    }
  }

  /** Stops scheduling, aborts running jobs and waits for them to settle (their leases are released). */
  async stop(): Promise<void> {
    for (const cron of this.#crons.values()) cron.stop();
    this.#crons.clear();
    this.#stop.abort();
    await Promise.allSettled([...this.#running.values()]);
  }

  status(): JobStatus[] {
    return [...this.#jobs.values()].map((job) => ({
      name: job.name,
      cron: job.cron,
      description: job.description,
      nextRun: this.#nextRun(job),
      running: this.#running.has(job.name),
    }));
  }

  /** The next time the job's cron names (whether or not this process's timers run it). */
  #nextRun(job: JobDefinition): string | null {
    if (job.cron === 'off') return null;
    const cron =
      this.#crons.get(job.name) ?? new Cron(job.cron, { timezone: this.#o.timezone, paused: true });
    return cron.nextRun()?.toISOString() ?? null;
  }

  /**
   * Runs a job now (`brain jobs run`, a dead letter's retry), under its lease like a scheduled run.
   * Resolves with the recorded run, or throws CONFLICT when another process holds the lease.
   */
  async runNow(name: string, trigger: Exclude<JobTrigger, 'schedule'> = 'manual'): Promise<JobRun> {
    const job = this.#jobs.get(name);
    if (!job)
      throw new BrainError('NOT_FOUND', `job: no job named ${JSON.stringify(name)}`, {
        issues: [{ field: 'job', message: `expected one of ${[...this.#jobs.keys()].join(', ')}` }],
      });
    const run = await this.#runLeased(job, null, trigger);
    if (!run) {
      const held = (await this.#o.store.leases(this.#now())).find((l) => l.job === name);
      throw new BrainError(
        'CONFLICT',
        `job ${name} is running now${held ? ` in ${held.holder}` : ''}; try again when it is done`,
      );
    }
    return run;
  }

  /**
   * Retries a dead letter: claims it (once, across processes), runs its job now and records the
   * outcome on the letter. A retry that fails again adds a new letter.
   */
  async retryDeadLetter(id: string): Promise<JobRun> {
    const store = this.#o.store;
    const letter = await store.deadLetter(id);
    if (!letter)
      throw new BrainError('NOT_FOUND', `dead letter ${id} not found (see brain dead-letter list)`);
    if (!this.#jobs.has(letter.job))
      throw new BrainError(
        'INVALID_INPUT',
        `dead letter ${id} is of job ${letter.job}, which no longer exists`,
      );
    if (!(await store.claimRetry(id, this.#now())))
      throw new BrainError('CONFLICT', `dead letter ${id} was already retried`);
    let run: JobRun;
    try {
      run = await this.runNow(letter.job, 'retry');
    } catch (error) {
      await store.setRetryOutcome(id, `failed: ${errorMessage(error)}`);
      throw error;
    }
    await store.setRetryOutcome(id, run.outcome === 'failed' ? `failed: ${run.message}` : run.outcome);
    return run;
  }

  #now(): string {
    return this.#o.clock.now().toISOString();
  }

  /**
   * What a cron firing does: runs the job for `slot` (its scheduled time, ISO) unless this process is
   * running it already or another process took that slot. Resolves with the run, or null when not run.
   */
  async runSlot(name: string, slot: string): Promise<JobRun | null> {
    const job = this.#jobs.get(name);
    if (!job || this.#running.has(name)) return null;
    try {
      return await this.#runLeased(job, slot, 'schedule');
    } catch (error) {
      // The store itself failed (database down): nothing ran; the next slot tries again.
      this.#o.logger.warn({ job: name, err: errorMessage(error) }, 'scheduled job could not start');
      return null;
    }
  }

  /** Takes the lease (for `slot`, or for a manual run), runs with retries, records, releases. */
  #runLeased(job: JobDefinition, slot: string | null, trigger: JobTrigger): Promise<JobRun | null> {
    const existing = this.#running.get(job.name);
    if (existing) return existing.then(() => null);
    const work = this.#leasedRun(job, slot, trigger).finally(() => this.#running.delete(job.name));
    this.#running.set(job.name, work);
    return work;
  }

  async #leasedRun(job: JobDefinition, slot: string | null, trigger: JobTrigger): Promise<JobRun | null> {
    const { store, clock, logger } = this.#o;
    const expires = () => new Date(clock.now().getTime() + this.#leaseMs).toISOString();
    const taken = await store.acquire({
      job: job.name,
      holder: this.holder,
      now: this.#now(),
      expiresAt: expires(),
      slot,
    });
    if (!taken) return null;
    // Aborted when the process stops or the lease is lost (AbortSignal.any needs Node 20.3).
    const lost = new AbortController();
    const onStop = () => lost.abort();
    this.#stop.signal.addEventListener('abort', onStop, { once: true });
    const signal = lost.signal;
    const heartbeat = setInterval(
      () => {
        store
          .renew(job.name, this.holder, this.#now(), expires())
          .then((held) => {
            if (!held) {
              logger.warn({ job: job.name }, 'job lease lost; stopping the run');
              lost.abort();
            }
          })
          .catch((error) =>
            logger.warn({ job: job.name, err: errorMessage(error) }, 'job lease renewal failed'),
          );
      },
      Math.max(10, Math.floor(this.#leaseMs / 3)),
    );
    heartbeat.unref();
    const startedAt = clock.now();
    let attempts = 0;
    let outcome: JobOutcome = 'failed';
    let message = '';
    try {
      for (;;) {
        attempts += 1;
        try {
          const result = await job.run({ signal, attempt: attempts, trigger });
          outcome = result?.outcome ?? 'succeeded';
          message = result?.message ?? '';
          break;
        } catch (error) {
          message = errorMessage(error);
          if (attempts > this.#o.retries || signal.aborted) break;
          const delay = Math.min(this.#o.retryDelayMs * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS);
          logger.warn(
            { job: job.name, attempt: attempts, retryInMs: delay, err: message },
            'job failed; retrying',
          );
          await pause(delay, signal);
          if (signal.aborted) break;
        }
      }
      const finishedAt = clock.now();
      const run: JobRun = {
        job: job.name,
        holder: this.holder,
        trigger,
        attempts,
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        durationMs: finishedAt.getTime() - startedAt.getTime(),
        outcome,
        message,
      };
      await store.recordRun(run);
      if (outcome === 'failed' && this.#stop.signal.aborted) {
        // Cut short by shutdown: recorded, not a dead letter; the next slot runs it again.
        logger.warn({ job: job.name, err: message }, 'job stopped by shutdown');
      } else if (outcome === 'failed') {
        await store.addDeadLetter({
          id: `dl_${randomUUID()}`,
          job: job.name,
          attempts,
          error: message,
          failedAt: run.finishedAt,
        });
        logger.error(
          { job: job.name, attempts, err: message },
          'job failed every try; added to the dead letters',
        );
      } else {
        logger.info({ job: job.name, outcome, durationMs: run.durationMs, message }, 'job finished');
      }
      this.#o.onRun?.(run);
      return run;
    } finally {
      clearInterval(heartbeat);
      this.#stop.signal.removeEventListener('abort', onStop);
      await store.release(job.name, this.holder, this.#now()).catch(() => undefined);
    }
  }
}
