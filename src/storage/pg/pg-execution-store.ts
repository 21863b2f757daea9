import type { RequestScope } from '../../core/scope.js';
import type {
  Execution,
  ExecutionOutcome,
  ExecutionStatus,
  ExecutionStore,
  NewExecution,
  ReapReport,
  WorkerRecord,
} from '../../modules/execution/execution-store.js';
import {
  cancelSet,
  EXECUTION_COLUMNS,
  type ExecutionRow,
  FINAL_STATUS_LIST,
  NEW_EXECUTION_COLUMNS,
  newExecutionValues,
  OUTCOME_COLUMNS,
  outcomeValues,
  RELEASE_SET,
  REQUEUE_SET,
  reapError,
  toCounts,
  toExecution,
  toWorkerRecord,
  WORKER_COLUMNS,
  type WorkerRow,
  workerValues,
} from '../execution-rows.js';
import type { PgDatabase } from './pg-database.js';

/**
 * The execution queue on PostgreSQL, shared by every replica and `brain worker`. A claim is one UPDATE
 * of the oldest queued row that no other claimer has locked (FOR UPDATE SKIP LOCKED), so concurrent
 * claimers take different rows without waiting on each other. Everything runs on the primary: a worker
 * must read its own writes.
 */
export class PgExecutionStore implements ExecutionStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async enqueue(execution: NewExecution): Promise<Execution> {
    const { rows } = await this.#db.query<ExecutionRow>(
      `INSERT INTO executions (${NEW_EXECUTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
       RETURNING ${EXECUTION_COLUMNS}`,
      newExecutionValues(execution),
      this.#db.primary,
    );
    return toExecution(rows[0] as ExecutionRow);
  }

  async get(scope: RequestScope, id: string): Promise<Execution | null> {
    const { rows } = await this.#db.query<ExecutionRow>(
      `SELECT ${EXECUTION_COLUMNS} FROM executions WHERE tenant_id = $1 AND id = $2`,
      [scope.tenantId, id],
      this.#db.primary,
    );
    return rows[0] ? toExecution(rows[0]) : null;
  }

  async list(
    scope: RequestScope,
    options: { status?: ExecutionStatus; limit: number; before?: string },
  ): Promise<Execution[]> {
    const values: (string | number)[] = [scope.tenantId];
    const where = ['tenant_id = $1'];
    if (options.status !== undefined) {
      values.push(options.status);
      where.push(`status = $${values.length}`);
    }
    if (options.before !== undefined) {
      values.push(options.before);
      where.push(`id < $${values.length}`);
    }
    values.push(options.limit);
    const { rows } = await this.#db.query<ExecutionRow>(
      `SELECT ${EXECUTION_COLUMNS} FROM executions WHERE ${where.join(' AND ')}
       ORDER BY id DESC LIMIT $${values.length}`,
      values,
      this.#db.primary,
    );
    return rows.map(toExecution);
  }

  async claim(workerId: string, now: string, leaseExpiresAt: string): Promise<Execution | null> {
    const { rows } = await this.#db.query<ExecutionRow>(
      `UPDATE executions SET status = 'running', worker_id = $1, started_at = $2, lease_expires_at = $3,
         attempts = attempts + 1
       WHERE id = (SELECT id FROM executions WHERE status = 'queued' ORDER BY created_at, id LIMIT 1
                   FOR UPDATE SKIP LOCKED)
         AND status = 'queued'
       RETURNING ${EXECUTION_COLUMNS}`,
      [workerId, now, leaseExpiresAt],
      this.#db.primary,
    );
    return rows[0] ? toExecution(rows[0]) : null;
  }

  async heartbeat(id: string, workerId: string, leaseExpiresAt: string): Promise<'ok' | 'cancel' | 'lost'> {
    const { rows } = await this.#db.query<{ cancel_requested: boolean }>(
      `UPDATE executions SET lease_expires_at = $1 WHERE id = $2 AND worker_id = $3 AND status = 'running'
       RETURNING cancel_requested`,
      [leaseExpiresAt, id, workerId],
      this.#db.primary,
    );
    const row = rows[0];
    if (!row) return 'lost';
    return row.cancel_requested ? 'cancel' : 'ok';
  }

  async release(id: string, workerId: string, now: string): Promise<boolean> {
    const cancelled = await this.#db.query(
      `UPDATE executions SET status = 'cancelled', cancel_requested = false, finished_at = $3,
         lease_expires_at = NULL
       WHERE id = $1 AND worker_id = $2 AND status = 'running' AND cancel_requested`,
      [id, workerId, now],
      this.#db.primary,
    );
    if (cancelled.rowCount === 1) return true;
    const { rowCount } = await this.#db.query(
      `UPDATE executions SET ${RELEASE_SET} WHERE id = $1 AND worker_id = $2 AND status = 'running'`,
      [id, workerId],
      this.#db.primary,
    );
    return rowCount === 1;
  }

  async finish(id: string, workerId: string, outcome: ExecutionOutcome): Promise<boolean> {
    const set = OUTCOME_COLUMNS.map((c, i) => `${c} = $${i + 1}`).join(', ');
    const n = OUTCOME_COLUMNS.length;
    const { rowCount } = await this.#db.query(
      `UPDATE executions SET ${set}, lease_expires_at = NULL
       WHERE id = $${n + 1} AND worker_id = $${n + 2} AND status = 'running'`,
      [...outcomeValues(outcome, (v) => v), id, workerId],
      this.#db.primary,
    );
    return rowCount === 1;
  }

  async cancel(scope: RequestScope, id: string, now: string): Promise<Execution | null> {
    // One UPDATE: a finish racing it either commits first (the WHERE no longer matches, the SELECT
    // below reads the ended run) or waits for it (and then finds the row no longer running).
    const { rows } = await this.#db.query<ExecutionRow>(
      `UPDATE executions SET ${cancelSet('true', '$1')}
       WHERE tenant_id = $2 AND id = $3 AND status IN ('queued', 'running')
       RETURNING ${EXECUTION_COLUMNS}`,
      [now, scope.tenantId, id],
      this.#db.primary,
    );
    if (rows[0]) return toExecution(rows[0]);
    return this.get(scope, id);
  }

  async reap(now: string, maxAttempts: number, workerCutoff: string): Promise<ReapReport> {
    // The expired rows locked, skipping any a finish or another reaper holds: each is settled once.
    const expired = `SELECT id FROM executions WHERE status = 'running' AND lease_expires_at < $1`;
    return this.#db.transaction(async (client) => {
      const cancelled = await client.query<{ id: string }>(
        `UPDATE executions SET status = 'cancelled', cancel_requested = false, finished_at = $1,
           lease_expires_at = NULL
         WHERE id IN (${expired} AND cancel_requested FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [now],
      );
      const failed = await client.query<{ id: string }>(
        `UPDATE executions SET status = 'failed', error = $3, finished_at = $1, lease_expires_at = NULL
         WHERE id IN (${expired} AND attempts >= $2 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [now, maxAttempts, reapError(maxAttempts)],
      );
      const requeued = await client.query<{ id: string }>(
        `UPDATE executions SET ${REQUEUE_SET}
         WHERE id IN (${expired} AND attempts < $2 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [now, maxAttempts],
      );
      const removed = await client.query('DELETE FROM execution_workers WHERE heartbeat_at < $1', [
        workerCutoff,
      ]);
      return {
        requeued: requeued.rows.map((r) => r.id).sort(),
        failed: failed.rows.map((r) => r.id).sort(),
        cancelled: cancelled.rows.map((r) => r.id).sort(),
        workersRemoved: removed.rowCount ?? 0,
      };
    });
  }

  async anyQueued(): Promise<boolean> {
    const { rows } = await this.#db.query<{ queued: boolean }>(
      "SELECT EXISTS (SELECT 1 FROM executions WHERE status = 'queued') AS queued",
      [],
      this.#db.primary,
    );
    return rows[0]?.queued === true;
  }

  async counts(): Promise<Record<ExecutionStatus, number>> {
    const { rows } = await this.#db.query<{ status: ExecutionStatus; n: string }>(
      'SELECT status, count(*) AS n FROM executions GROUP BY status',
      [],
      this.#db.primary,
    );
    return toCounts(rows);
  }

  async prune(before: string): Promise<number> {
    const { rowCount } = await this.#db.query(
      `DELETE FROM executions WHERE status IN ${FINAL_STATUS_LIST} AND finished_at < $1`,
      [before],
      this.#db.primary,
    );
    return rowCount ?? 0;
  }

  async upsertWorker(worker: WorkerRecord): Promise<void> {
    await this.#db.query(
      `INSERT INTO execution_workers (${WORKER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
         started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, state = excluded.state,
         execution_id = excluded.execution_id`,
      workerValues(worker),
      this.#db.primary,
    );
  }

  async removeWorker(id: string): Promise<void> {
    await this.#db.query('DELETE FROM execution_workers WHERE id = $1', [id], this.#db.primary);
  }

  async workers(): Promise<WorkerRecord[]> {
    const { rows } = await this.#db.query<WorkerRow>(
      `SELECT ${WORKER_COLUMNS} FROM execution_workers ORDER BY id`,
      [],
      this.#db.primary,
    );
    return rows.map(toWorkerRecord);
  }
}
