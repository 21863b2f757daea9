import os from 'node:os';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Execution, ExecutionOutcome, ExecutionStore, WorkerRecord } from './execution-store.js';
import { runSandboxed, type SandboxLimits, type SandboxRun, sweepStaleWorkdirs } from './sandbox.js';

/** What every worker of a process runs with (from BRAIN_SANDBOX, BRAIN_MAX_*, BRAIN_EXECUTION_PATH). */
export interface ExecutionSettings {
  mode: 'bwrap' | 'none';
  /** Per-run limits; `wallMs` is the default timeout, a request may ask for less. */
  limits: SandboxLimits;
  /** Where runs' working directories are made; none: the system temp dir. */
  workRoot?: string | undefined;
  /** A claim holds this long without a heartbeat (sent every third of it); then any process reaps it. */
  leaseMs: number;
  /** Claims a run gets: a run whose worker died is re-queued until it has had this many, then failed. */
  maxAttempts: number;
  /** How often an idle worker looks for work queued by another process. */
  pollMs: number;
  /** An idle worker above the pool's minimum stops after this long without work. */
  idleMs: number;
}

export const DEFAULT_EXECUTION_TIMING = {
  leaseMs: 15_000,
  maxAttempts: 2,
  pollMs: 250,
  idleMs: 30_000,
} as const;

/** One worker as the pool and /health see it. */
export interface WorkerState {
  id: string;
  state: WorkerRecord['state'];
  execution_id: string | null;
  /** Runs this worker finished since it started. */
  runs: number;
}

export interface ExecutionPoolOptions {
  store: ExecutionStore;
  settings: ExecutionSettings;
  clock: Clock;
  logger: Logger;
  audit?: AuditLog | undefined;
  /** Workers kept running (BRAIN_WORKER_MIN) and at most (BRAIN_WORKER_MAX). */
  min: number;
  max: number;
  /** Prefix of the worker ids (`host:pid` by default; `brain worker --id N` gives `host:worker-N`). */
  name?: string;
}

/** Told of each run a worker of this process finished: its status and wall seconds (metrics). */
export type RunObserver = (status: ExecutionOutcome['status'], seconds: number) => void;

/**
 * A process's execution workers: `min` kept running, more started (up to `max`) while work waits and
 * every worker is busy, the extra ones stopping again after `idleMs` idle. Each worker claims one run
 * at a time from the shared table, renews its lease while the run lasts (and learns of a cancel from
 * the renewal), and records the outcome. Any pool also reaps: runs whose lease ran out (their worker
 * died) go back to the queue or fail. `brain serve` and `brain worker` run the same pool.
 */
export class ExecutionPool {
  readonly #o: ExecutionPoolOptions;
  readonly #prefix: string;
  readonly #workers = new Map<number, { state: WorkerState; stop: boolean; done: Promise<void> }>();
  /** Wakes idle workers at once when this process queued something. */
  #wake: (() => void)[] = [];
  readonly #finished = new Map<string, (() => void)[]>();
  /** Runs of this process's workers, to cancel at once (other processes learn it at their heartbeat). */
  readonly #local = new Map<string, () => void>();
  readonly #observers: RunObserver[] = [];
  #running = false;
  #reaper: NodeJS.Timeout | null = null;
  #next = 0;
  /** Uids of concurrent runs (when root): distinct per process and slot, outside the usual ranges. */
  readonly #uidBase = 200_000 + (process.pid % 100_000) * 64;

  constructor(options: ExecutionPoolOptions) {
    if (options.max < options.min || options.max < 0 || options.max > 64)
      throw new Error(
        `worker pool: min ${options.min} and max ${options.max} must satisfy 0 ≤ min ≤ max ≤ 64`,
      );
    this.#o = options;
    this.#prefix = options.name ?? `${os.hostname()}:${process.pid}`;
  }

  /** Starts the minimum of workers and the reaper. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const swept = sweepStaleWorkdirs(this.#o.settings.workRoot);
    if (swept > 0) this.#o.logger.info({ swept }, 'removed working directories of runs whose process died');
    for (let i = 0; i < this.#o.min; i++) this.#spawn();
    const reap = () => {
      this.#reap().catch((error) => this.#o.logger.warn({ err: error }, 'execution reaper failed'));
    };
    reap();
    // Held open: a started pool is work the process does (`brain worker` has nothing else) until stop().
    this.#reaper = setInterval(reap, Math.max(1000, Math.floor(this.#o.settings.leaseMs / 2)));
  }

  /** This process queued a run: an idle worker takes it now, or one more starts when all are busy. */
  kick(): void {
    if (!this.#running) return;
    const idle = [...this.#workers.values()].some((w) => w.state.state === 'idle');
    if (!idle && this.#workers.size < this.#o.max) this.#spawn();
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
  }

  /** Resolves when a worker of this process finished the run (or after `ms`, whichever is first). */
  finished(id: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const waiting = this.#finished;
      const timer = setTimeout(() => {
        // Not ended here (another process's worker may run it): forget this waiter.
        const rest = (waiting.get(id) ?? []).filter((f) => f !== done);
        if (rest.length > 0) waiting.set(id, rest);
        else waiting.delete(id);
        resolve();
      }, ms);
      const list = waiting.get(id) ?? [];
      list.push(done);
      waiting.set(id, list);
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** Adds a listener told of every run this process's workers finish (metrics). */
  observe(observer: RunObserver): void {
    this.#observers.push(observer);
  }

  /** Cancels a run at once when a worker of this process runs it; false when none does. */
  cancelLocal(id: string): boolean {
    const cancel = this.#local.get(id);
    cancel?.();
    return cancel !== undefined;
  }

  status(): WorkerState[] {
    return [...this.#workers.values()].map((w) => ({ ...w.state }));
  }

  get running(): boolean {
    return this.#running;
  }

  /**
   * Stops claiming; a run in progress gets `drainMs` to finish, then it is killed and put back in the
   * queue (it had not ended), and the workers leave the registry.
   */
  async stop(drainMs = 10_000): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#reaper) clearInterval(this.#reaper);
    this.#reaper = null;
    for (const w of this.#workers.values()) w.stop = true;
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
    const all = Promise.all([...this.#workers.values()].map((w) => w.done));
    const timer = setTimeout(() => this.#abortAll.abort(), drainMs);
    timer.unref?.();
    await all;
    clearTimeout(timer);
  }

  readonly #abortAll = new AbortController();

  #spawn(): void {
    const slot = this.#freeSlot();
    const state: WorkerState = {
      id: `${this.#prefix}:${slot}`,
      state: 'idle',
      execution_id: null,
      runs: 0,
    };
    const entry = { state, stop: false, done: Promise.resolve() };
    this.#workers.set(slot, entry);
    entry.done = this.#loop(slot, entry)
      .catch((error) => this.#o.logger.error({ err: error, worker: state.id }, 'execution worker crashed'))
      .finally(() => {
        this.#workers.delete(slot);
        this.#o.store.removeWorker(state.id).catch(() => undefined);
        // A worker of the minimum that crashed is replaced, a second later: a fault that crashes every
        // worker at once (the store refusing them) must not become a loop that never yields.
        if (this.#running && this.#workers.size < this.#o.min) {
          const again = setTimeout(() => {
            if (this.#running && this.#workers.size < this.#o.min) this.#spawn();
          }, 1000);
          again.unref?.();
        }
      });
  }

  #freeSlot(): number {
    for (let i = 0; i < 64; i++) {
      const slot = (this.#next + i) % 64;
      if (!this.#workers.has(slot)) {
        this.#next = slot + 1;
        return slot;
      }
    }
    throw new Error('worker pool: no free slot');
  }

  async #announce(state: WorkerState, started: string): Promise<void> {
    const [host, pid] = [os.hostname(), process.pid];
    await this.#o.store.upsertWorker({
      id: state.id,
      host,
      pid,
      started_at: started,
      heartbeat_at: this.#o.clock.now().toISOString(),
      state: state.state,
      execution_id: state.execution_id,
    });
  }

  async #loop(slot: number, entry: { state: WorkerState; stop: boolean }): Promise<void> {
    const { store, clock, settings } = this.#o;
    const { state } = entry;
    const started = clock.now().toISOString();
    // A store that refuses it now (locked, down) is no reason to stop: the next announce retries.
    await this.#announce(state, started).catch(() => undefined);
    let idleSince = Date.now();
    let lastAnnounce = Date.now();
    let failures = 0;
    while (this.#running && !entry.stop) {
      const now = clock.now();
      let claimed: Execution | null;
      try {
        claimed = await store.claim(
          state.id,
          now.toISOString(),
          new Date(now.getTime() + settings.leaseMs).toISOString(),
        );
        failures = 0;
      } catch (error) {
        // The store is locked, down or failing: the worker waits (longer each time, up to 10 s) and
        // tries again rather than dying; the first failure of a spell is logged.
        if (failures++ === 0)
          this.#o.logger.warn({ err: error, worker: state.id }, 'claiming a run failed; retrying');
        await this.#idle(Math.min(10_000, settings.pollMs * 2 ** Math.min(failures, 6)));
        continue;
      }
      if (claimed) {
        state.state = 'busy';
        state.execution_id = claimed.id;
        await this.#announce(state, started).catch(() => undefined);
        await this.#run(claimed, state, slot);
        state.runs++;
        state.state = 'idle';
        state.execution_id = null;
        await this.#announce(state, started).catch(() => undefined);
        idleSince = Date.now();
        lastAnnounce = Date.now();
        continue;
      }
      const extra = this.#workers.size > this.#o.min;
      if (extra && Date.now() - idleSince >= settings.idleMs) break;
      // Idle: the registry's heartbeat once a lease (a worker is dropped after three without one).
      if (Date.now() - lastAnnounce >= settings.leaseMs) {
        await this.#announce(state, started).catch(() => undefined);
        lastAnnounce = Date.now();
      }
      await this.#idle(settings.pollMs);
    }
  }

  /** Waits `ms`, or until this process queues something (kick). */
  #idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref?.();
      this.#wake.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async #run(execution: Execution, state: WorkerState, slot: number): Promise<void> {
    const { store, clock, settings, logger } = this.#o;
    const abort = new AbortController();
    let why: 'cancel' | 'lost' | 'drain' | null = null;
    const onDrain = () => {
      why ??= 'drain';
      abort.abort();
    };
    this.#abortAll.signal.addEventListener('abort', onDrain, { once: true });
    this.#local.set(execution.id, () => {
      why ??= 'cancel';
      abort.abort();
    });
    const beat = setInterval(
      () => {
        const until = new Date(clock.now().getTime() + settings.leaseMs).toISOString();
        store
          .heartbeat(execution.id, state.id, until)
          .then((answer) => {
            if (answer === 'ok') return;
            why ??= answer;
            abort.abort();
          })
          .catch((error) => logger.warn({ err: error, execution: execution.id }, 'heartbeat failed'));
      },
      Math.max(100, Math.floor(settings.leaseMs / 3)),
    );
    beat.unref?.();
    let run: SandboxRun | null = null;
    let error: string | null = null;
    const wall = Math.min(execution.timeout_ms, settings.limits.wallMs);
    try {
      run = await runSandboxed(execution.code, {
        mode: settings.mode,
        limits: { ...settings.limits, wallMs: wall, cpuSeconds: Math.max(1, Math.ceil(wall / 1000)) },
        files: execution.files.map((f) => ({
          name: f.name,
          content: Buffer.from(f.content_base64, 'base64'),
        })),
        uid: this.#uidBase + slot,
        returnedFiles: { count: 16, bytes: 1024 * 1024 },
        ...(settings.workRoot ? { workRoot: settings.workRoot } : {}),
        signal: abort.signal,
      });
    } catch (e) {
      error = `the sandbox could not run the code: ${e instanceof Error ? e.message : String(e)}`;
      logger.error({ err: e, execution: execution.id }, 'sandbox failed');
    } finally {
      clearInterval(beat);
      this.#local.delete(execution.id);
      this.#abortAll.signal.removeEventListener('abort', onDrain);
    }
    const wake = () => {
      const list = this.#finished.get(execution.id);
      this.#finished.delete(execution.id);
      for (const f of list ?? []) f();
    };
    if (why === 'lost') {
      logger.warn(
        { execution: execution.id, worker: state.id },
        'lost the lease of a run; its result is dropped',
      );
      wake();
      return;
    }
    if (why === 'drain') {
      // Not ended by the code: back to the queue, for a worker that is not stopping.
      const back = await store.release(execution.id, state.id, clock.now().toISOString()).catch(() => false);
      logger.info({ execution: execution.id, requeued: back }, 'run stopped by the shutdown');
      wake();
      return;
    }
    const outcome = toOutcome(
      run,
      { error, cancelled: why === 'cancel', wallLimitMs: wall },
      clock.now().toISOString(),
    );
    const written = await this.#finish(execution.id, state.id, outcome);
    for (const o of this.#observers) o(outcome.status, outcome.wall_ms / 1000);
    if (written)
      await this.#o.audit?.record({
        principal: execution.principal,
        tenantId: execution.tenant_id,
        action: 'execution.run',
        target: execution.id,
        outcome: outcome.status === 'succeeded' ? 'ok' : 'error',
        details: {
          status: outcome.status,
          code_bytes: Buffer.byteLength(execution.code, 'utf8'),
          exit_code: outcome.exit_code,
          cpu_time_ms: outcome.cpu_time_ms,
          wall_ms: outcome.wall_ms,
          worker: state.id,
        },
      });
    wake();
  }

  /**
   * Records a run's end, retrying a store that fails for a moment (locked, a connection reset) while the
   * lease still holds; after that the reaper re-runs it, which is better than a result half-kept.
   */
  async #finish(id: string, workerId: string, outcome: ExecutionOutcome): Promise<boolean> {
    const deadline = Date.now() + this.#o.settings.leaseMs / 2;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#o.store.finish(id, workerId, outcome);
      } catch (error) {
        if (Date.now() + 200 * 2 ** attempt > deadline) {
          this.#o.logger.error(
            { err: error, execution: id },
            'could not record the end of a run; it will run again',
          );
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
      }
    }
  }

  async #reap(): Promise<void> {
    const { store, clock, settings, logger } = this.#o;
    const now = clock.now();
    const report = await store.reap(
      now.toISOString(),
      settings.maxAttempts,
      new Date(now.getTime() - 3 * settings.leaseMs).toISOString(),
    );
    if (report.requeued.length + report.failed.length + report.cancelled.length > 0)
      logger.warn(
        { requeued: report.requeued, failed: report.failed, cancelled: report.cancelled },
        'runs whose worker stopped answering: re-queued, failed or cancelled',
      );
    // Runs queued by other processes wake no worker here: with every worker busy (or none kept, at
    // BRAIN_WORKER_MIN=0), one more starts while the queue holds work.
    const idle = [...this.#workers.values()].some((w) => w.state.state === 'idle');
    if (this.#running && !idle && this.#workers.size < this.#o.max && (await store.anyQueued()))
      this.#spawn();
  }
}

/** A sandbox run (or its failure to start) as the outcome a worker records. */
export function toOutcome(
  run: SandboxRun | null,
  how: { error: string | null; cancelled: boolean; wallLimitMs: number },
  finishedAt: string,
): ExecutionOutcome {
  const { error, cancelled } = how;
  const status: ExecutionOutcome['status'] = cancelled
    ? 'cancelled'
    : run === null
      ? 'failed'
      : run.timedOut
        ? 'timed_out'
        : run.exitCode === 0
          ? 'succeeded'
          : 'failed';
  return {
    status,
    exit_code: run?.exitCode ?? null,
    signal: run?.signal ?? null,
    cpu_time_ms: run?.cpuMs ?? null,
    wall_ms: Math.round(run?.wallMs ?? 0),
    stdout: run?.stdout ?? '',
    stderr: run?.stderr ?? '',
    stdout_truncated: run?.stdoutTruncated ?? false,
    stderr_truncated: run?.stderrTruncated ?? false,
    result: run?.result ?? null,
    output_files: (run?.files ?? []).map((f) => ({
      name: f.name,
      content_base64: f.content.toString('base64'),
    })),
    error:
      error ??
      (run?.timedOut
        ? `killed at its wall-clock limit of ${how.wallLimitMs} ms`
        : run?.signal === 'SIGXCPU'
          ? 'killed at its CPU time limit'
          : null),
    finished_at: finishedAt,
  };
}
