import {
  EXECUTION_STATUSES,
  type Execution,
  type ExecutionFile,
  type ExecutionOutcome,
  type ExecutionStatus,
  FINAL_STATUSES,
  type NewExecution,
  type WorkerRecord,
} from '../modules/execution/execution-store.js';

/**
 * An execution as either driver returns it: the file lists JSON text (SQLite) or parsed jsonb
 * (PostgreSQL), the flags 0/1 (SQLite) or booleans (PostgreSQL); times are ISO text on both engines.
 */
export interface ExecutionRow {
  id: string;
  tenant_id: string;
  principal: string;
  code: string;
  files: string | ExecutionFile[];
  status: ExecutionStatus;
  exit_code: number | null;
  signal: string | null;
  cpu_time_ms: number | null;
  wall_ms: number | null;
  stdout: string;
  stderr: string;
  stdout_truncated: number | boolean;
  stderr_truncated: number | boolean;
  result: string | null;
  output_files: string | ExecutionFile[];
  error: string | null;
  timeout_ms: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  worker_id: string | null;
  lease_expires_at: string | null;
  attempts: number;
  cancel_requested: number | boolean;
}

export const EXECUTION_COLUMNS = `id, tenant_id, principal, code, files, status, exit_code, signal, cpu_time_ms,
  wall_ms, stdout, stderr, stdout_truncated, stderr_truncated, result, output_files, error, timeout_ms,
  created_at, started_at, finished_at, worker_id, lease_expires_at, attempts, cancel_requested`;

/** What enqueue writes, in {@link newExecutionValues} order; the rest takes the columns' defaults. */
export const NEW_EXECUTION_COLUMNS = 'id, tenant_id, principal, code, files, timeout_ms, created_at';

/** What finish writes, in {@link outcomeValues} order. */
export const OUTCOME_COLUMNS = [
  'status',
  'exit_code',
  'signal',
  'cpu_time_ms',
  'wall_ms',
  'stdout',
  'stderr',
  'stdout_truncated',
  'stderr_truncated',
  'result',
  'output_files',
  'error',
  'finished_at',
] as const;

export const WORKER_COLUMNS = 'id, host, pid, started_at, heartbeat_at, state, execution_id';

const files = (value: string | ExecutionFile[]): ExecutionFile[] =>
  typeof value === 'string' ? (JSON.parse(value) as ExecutionFile[]) : value;

const nullableNumber = (value: number | string | null): number | null =>
  value === null ? null : Number(value);

export function toExecution(r: ExecutionRow): Execution {
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    principal: r.principal,
    code: r.code,
    files: files(r.files),
    status: r.status,
    exit_code: nullableNumber(r.exit_code),
    signal: r.signal,
    cpu_time_ms: nullableNumber(r.cpu_time_ms),
    wall_ms: nullableNumber(r.wall_ms),
    stdout: r.stdout,
    stderr: r.stderr,
    stdout_truncated: Boolean(r.stdout_truncated),
    stderr_truncated: Boolean(r.stderr_truncated),
    result: r.result,
    output_files: files(r.output_files),
    error: r.error,
    timeout_ms: Number(r.timeout_ms),
    created_at: r.created_at,
    started_at: r.started_at,
    finished_at: r.finished_at,
    worker_id: r.worker_id,
    lease_expires_at: r.lease_expires_at,
    attempts: Number(r.attempts),
    cancel_requested: Boolean(r.cancel_requested),
  };
}

/** A new execution's values in NEW_EXECUTION_COLUMNS order (the files as JSON text, for both engines). */
export function newExecutionValues(e: NewExecution): (string | number)[] {
  return [e.id, e.tenant_id, e.principal, e.code, JSON.stringify(e.files), e.timeout_ms, e.created_at];
}

/**
 * An outcome's values in OUTCOME_COLUMNS order: the output files as JSON text, the flags as `flag`
 * makes them (0/1 on SQLite, booleans on PostgreSQL).
 */
export function outcomeValues<F>(
  o: ExecutionOutcome,
  flag: (value: boolean) => F,
): (string | number | null | F)[] {
  return [
    o.status,
    o.exit_code,
    o.signal,
    o.cpu_time_ms,
    o.wall_ms,
    o.stdout,
    o.stderr,
    flag(o.stdout_truncated),
    flag(o.stderr_truncated),
    o.result,
    JSON.stringify(o.output_files),
    o.error,
    o.finished_at,
  ];
}

export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  started_at: string;
  heartbeat_at: string;
  state: WorkerRecord['state'];
  execution_id: string | null;
}

export function toWorkerRecord(r: WorkerRow): WorkerRecord {
  return {
    id: r.id,
    host: r.host,
    pid: Number(r.pid),
    started_at: r.started_at,
    heartbeat_at: r.heartbeat_at,
    state: r.state,
    execution_id: r.execution_id,
  };
}

/** A worker's values in WORKER_COLUMNS order. */
export function workerValues(w: WorkerRecord): (string | number | null)[] {
  return [w.id, w.host, w.pid, w.started_at, w.heartbeat_at, w.state, w.execution_id];
}

/** Every status at zero, then the rows' counts over it: each of the six keys is always present. */
export function toCounts(
  rows: { status: ExecutionStatus; n: number | string }[],
): Record<ExecutionStatus, number> {
  const counts = Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, 0])) as Record<ExecutionStatus, number>;
  for (const r of rows) counts[r.status] = Number(r.n);
  return counts;
}

/** The reaper's error on a run whose workers kept dying. */
export function reapError(maxAttempts: number): string {
  return `its worker stopped sending heartbeats on each of its ${maxAttempts} attempts; not run again`;
}

/**
 * Back in the queue as it was before the claim (a stopping worker hands its run back, or the reaper
 * re-queues it): no worker, no lease, not started. A cancel asked for meanwhile stays asked for.
 */
export const REQUEUE_SET = "status = 'queued', worker_id = NULL, started_at = NULL, lease_expires_at = NULL";

/** A release: re-queued, and the claim it undoes not counted. */
export const RELEASE_SET = `${REQUEUE_SET}, attempts = attempts - 1`;

/** The final statuses as a SQL list, for the WHEREs of pruning. */
export const FINAL_STATUS_LIST = `(${FINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/**
 * Cancel as one UPDATE of a queued or running row (the SET's CASEs read the row as it was): a queued run
 * ends cancelled now, a running one is flagged for its worker. `flag` is the engine's true (1 or true).
 */
export const cancelSet = (
  flag: string,
  now: string,
): string => `status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
  finished_at = CASE WHEN status = 'queued' THEN ${now} ELSE finished_at END,
  cancel_requested = CASE WHEN status = 'running' THEN ${flag} ELSE cancel_requested END`;
