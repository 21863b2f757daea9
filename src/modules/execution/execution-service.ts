import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { BrainError, notFound } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { RequestScope } from '../../core/scope.js';
import { parseInput } from '../../core/validation.js';
import type { WriteGate } from '../memory/memory-service.js';
import type { ExecutionPool } from './execution-pool.js';
import {
  type ExecutionView,
  executeShape,
  executionIdSchema,
  listExecutionsSchema,
} from './execution-schemas.js';
import { type Execution, type ExecutionStore, FINAL_STATUSES } from './execution-store.js';

export interface ExecutionService {
  /**
   * Queues a run of the code; with `wait` (default true) answers once it ended, or once `waitMs` has
   * passed (then with its status so far: poll `get`). UNAVAILABLE when runs cannot be sandboxed here.
   */
  execute(scope: RequestScope, input: unknown, options?: { waitMs?: number }): Promise<ExecutionView>;
  get(scope: RequestScope, input: unknown): Promise<ExecutionView>;
  /** Cancels a queued or running run (a finished one is returned as it is). */
  cancel(scope: RequestScope, input: unknown): Promise<ExecutionView>;
  list(scope: RequestScope, input: unknown): Promise<ExecutionView[]>;
  /** Why runs cannot be sandboxed here (what to install), or null. */
  problem(): string | null;
  /** The longest timeout a run may ask for (BRAIN_MAX_EXECUTION_TIME_MS). */
  readonly maxTimeoutMs: number;
}

export function toExecutionView(e: Execution): ExecutionView {
  return {
    id: e.id,
    status: e.status,
    exit_code: e.exit_code,
    signal: e.signal,
    result: e.result,
    stdout: e.stdout,
    stderr: e.stderr,
    stdout_truncated: e.stdout_truncated,
    stderr_truncated: e.stderr_truncated,
    output_files: e.output_files,
    error: e.error,
    cpu_time_ms: e.cpu_time_ms,
    wall_ms: e.wall_ms,
    timeout_ms: e.timeout_ms,
    code_bytes: Buffer.byteLength(e.code, 'utf8'),
    attempts: e.attempts,
    worker_id: e.worker_id,
    created_at: e.created_at,
    started_at: e.started_at,
    finished_at: e.finished_at,
  };
}

const idInput = z.object({ id: executionIdSchema }).strict();

/** How long a waiting caller re-reads the row when the run is on another process's worker. */
const POLL_MS = 100;

export function createExecutionService(config: {
  store: ExecutionStore;
  clock: Clock;
  /** This process's workers (none: another process's workers run what is queued). */
  pool?: ExecutionPool | null;
  maintenance?: WriteGate;
  maxTimeoutMs: number;
  /** Why runs cannot be sandboxed (sandboxProblem(), or BRAIN_SANDBOX=none in production), or null. */
  problem: () => string | null;
}): ExecutionService {
  const { store, clock, pool } = config;
  const executeSchema = z.object(executeShape(config.maxTimeoutMs)).strict();
  const found = async (scope: RequestScope, id: string) => {
    const e = await store.get(scope, id);
    if (!e) throw notFound('execution', id);
    return e;
  };
  return {
    maxTimeoutMs: config.maxTimeoutMs,
    problem: config.problem,
    async execute(scope, input, options = {}) {
      const q = parseInput(executeSchema, input);
      const problem = config.problem();
      if (problem) throw new BrainError('UNAVAILABLE', `execution is unavailable: ${problem}`, { problem });
      await config.maintenance?.assertWritable('queueing an execution');
      const now = clock.now();
      const queued = await store.enqueue({
        id: newId('exe', now.getTime()),
        tenant_id: scope.tenantId,
        principal: scope.principal ?? 'local',
        code: q.code,
        files: q.files ?? [],
        timeout_ms: q.timeout_ms ?? config.maxTimeoutMs,
        created_at: now.toISOString(),
      });
      pool?.kick();
      if (q.wait === false) return toExecutionView(queued);
      // Waits for the run's end: told at once by this process's worker, else by re-reading the row.
      const deadline = Date.now() + (options.waitMs ?? queued.timeout_ms + 60_000);
      let current = queued;
      while (!FINAL_STATUSES.includes(current.status) && Date.now() < deadline) {
        const left = deadline - Date.now();
        await (pool?.running
          ? pool.finished(current.id, Math.min(left, 250))
          : new Promise<void>((r) => setTimeout(r, Math.min(left, POLL_MS))));
        current = (await store.get(scope, current.id)) ?? current;
      }
      return toExecutionView(current);
    },
    async get(scope, input) {
      const { id } = parseInput(idInput, input);
      return toExecutionView(await found(scope, id));
    },
    async cancel(scope, input) {
      const { id } = parseInput(idInput, input);
      const after = await store.cancel(scope, id, clock.now().toISOString());
      if (!after) throw notFound('execution', id);
      if (after.status === 'running' && pool?.cancelLocal(id)) {
        // This process runs it: it ends within moments; answer with its end.
        await pool.finished(id, 5000);
        return toExecutionView(await found(scope, id));
      }
      return toExecutionView(after);
    },
    async list(scope, input) {
      const q = parseInput(listExecutionsSchema, input ?? {});
      const rows = await store.list(scope, {
        limit: q.limit ?? 20,
        ...(q.status ? { status: q.status } : {}),
        ...(q.before ? { before: q.before } : {}),
      });
      return rows.map(toExecutionView);
    },
  };
}
