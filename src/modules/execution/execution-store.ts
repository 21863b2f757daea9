import type { RequestScope } from '../../core/scope.js';

/** Where a run is. queued → running → one of the four ends; queued or running → cancelled. */
export const EXECUTION_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/** The statuses a run ends in: it never leaves one. */
export const FINAL_STATUSES: readonly ExecutionStatus[] = ['succeeded', 'failed', 'timed_out', 'cancelled'];

/** A file passed in or returned, its content base64 (as stored and as the API carries it). */
export interface ExecutionFile {
  name: string;
  content_base64: string;
}

/** One execution, as stored (times ISO 8601 UTC). */
export interface Execution {
  id: string;
  tenant_id: string;
  /** Who asked for it (the principal's id, `local` without authentication). */
  principal: string;
  code: string;
  /** Files given to the run, in its working directory. */
  files: ExecutionFile[];
  status: ExecutionStatus;
  exit_code: number | null;
  /** The signal that ended it (SIGKILL at the timeout, SIGXCPU past the CPU limit), if one did. */
  signal: string | null;
  cpu_time_ms: number | null;
  wall_ms: number | null;
  stdout: string;
  stderr: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  /** repr() of the last expression's value, when the code ends with one. */
  result: string | null;
  output_files: ExecutionFile[];
  /** Why it failed without running to an exit (the worker died twice, the sandbox could not start). */
  error: string | null;
  /** The wall-clock limit of this run, ms. */
  timeout_ms: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** The worker that runs or ran it. */
  worker_id: string | null;
  /** Until when the worker's lease holds without a heartbeat (running only). */
  lease_expires_at: string | null;
  /** Times a worker claimed it (1 when the first run settled it). */
  attempts: number;
  /** A cancel was asked for while it ran: its worker kills it at the next heartbeat. */
  cancel_requested: boolean;
}

/** What enqueue stores: the rest starts empty (queued, no worker, attempts 0). */
export type NewExecution = Pick<
  Execution,
  'id' | 'tenant_id' | 'principal' | 'code' | 'files' | 'timeout_ms' | 'created_at'
>;

/** How a run ended, as its worker reports it: the fields of the row a finish writes. */
export type ExecutionOutcome = Pick<
  Execution,
  | 'exit_code'
  | 'signal'
  | 'cpu_time_ms'
  | 'stdout'
  | 'stderr'
  | 'stdout_truncated'
  | 'stderr_truncated'
  | 'result'
  | 'output_files'
  | 'error'
> & {
  status: Extract<ExecutionStatus, 'succeeded' | 'failed' | 'timed_out' | 'cancelled'>;
  wall_ms: number;
  finished_at: string;
};

/** A worker as it announces itself: in the server's pool or a `brain worker` process. */
export interface WorkerRecord {
  id: string;
  host: string;
  pid: number;
  started_at: string;
  heartbeat_at: string;
  /** idle: waiting for work; busy: running `execution_id`; stopping: finishing before it exits. */
  state: 'idle' | 'busy' | 'stopping';
  execution_id: string | null;
}

/** What the reaper did with runs whose worker stopped sending heartbeats. */
export interface ReapReport {
  /** Put back in the queue (they had tries left). */
  requeued: string[];
  /** Ended failed (no tries left). */
  failed: string[];
  /** Ended cancelled: a cancel was asked for before their worker stopped answering. */
  cancelled: string[];
  /** Workers removed from the registry (their heartbeat is older than the cut-off). */
  workersRemoved: number;
}

/**
 * The storage port of the execution queue (tables `executions` and `execution_workers`). Reads by id are
 * tenant-scoped; claiming is server-wide (any worker runs any tenant's code). Every transition is one
 * statement or transaction whose WHERE names the state it leaves, so two workers never claim one row
 * and a late worker never overwrites a run that was cancelled or re-queued meanwhile.
 */
export interface ExecutionStore {
  enqueue(execution: NewExecution): Promise<Execution>;
  get(scope: RequestScope, id: string): Promise<Execution | null>;
  /** Newest first; `before` (an id) pages on. */
  list(
    scope: RequestScope,
    options: { status?: ExecutionStatus; limit: number; before?: string },
  ): Promise<Execution[]>;
  /**
   * Claims the oldest queued run for `workerId` (status running, started_at = now, attempts + 1, the
   * lease until `leaseExpiresAt`), or null when none is queued. Atomic across processes and replicas
   * (PostgreSQL: FOR UPDATE SKIP LOCKED).
   */
  claim(workerId: string, now: string, leaseExpiresAt: string): Promise<Execution | null>;
  /**
   * Extends the lease of a run this worker holds. Returns `lost` when it no longer holds it (reaped,
   * finished), `cancel` when a cancel was asked for, `ok` otherwise.
   */
  heartbeat(id: string, workerId: string, leaseExpiresAt: string): Promise<'ok' | 'cancel' | 'lost'>;
  /**
   * Puts a run this worker holds back in the queue (its worker is stopping; the run had not ended), its
   * claim not counted; one whose cancel was asked for ends cancelled at `now` instead. False when it no
   * longer holds it.
   */
  release(id: string, workerId: string, now: string): Promise<boolean>;
  /** Records the end of a run this worker holds; false when it no longer holds it (nothing written). */
  finish(id: string, workerId: string, outcome: ExecutionOutcome): Promise<boolean>;
  /**
   * Cancels a run of the tenant: a queued one ends cancelled at once; a running one is flagged and ends
   * when its worker sees the flag; a finished one is left. Returns it as it is after, or null if absent.
   */
  cancel(scope: RequestScope, id: string, now: string): Promise<Execution | null>;
  /**
   * Runs still `running` whose lease expired before `now`: re-queued when they have had fewer than
   * `maxAttempts` claims, else ended failed with `error`; one whose cancel was asked for ends cancelled.
   * Also removes workers whose heartbeat is older
   * than `workerCutoff`.
   */
  reap(now: string, maxAttempts: number, workerCutoff: string): Promise<ReapReport>;
  /** Whether any run of any tenant waits in the queue (a cheap look: the pools ask it often). */
  anyQueued(): Promise<boolean>;
  /** Rows per status, every tenant (the queue-size gauge and /health). */
  counts(): Promise<Record<ExecutionStatus, number>>;
  /** Deletes finished runs that ended before `before`; returns how many. */
  prune(before: string): Promise<number>;
  /** Adds or replaces a worker's record (it starts, or its heartbeat says what it does now). */
  upsertWorker(worker: WorkerRecord): Promise<void>;
  removeWorker(id: string): Promise<void>;
  /** Every registered worker, by id. */
  workers(): Promise<WorkerRecord[]>;
}
