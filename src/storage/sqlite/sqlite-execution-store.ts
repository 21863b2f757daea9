import { type Logger, silentLogger } from '../../core/logger.js';
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
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

const flag = (value: boolean): number => (value ? 1 : 0);

const RELEASE = `UPDATE executions SET ${RELEASE_SET} WHERE id = ? AND worker_id = ? AND status = 'running'`;

/**
 * The execution queue on SQLite. A claim is one UPDATE of the oldest queued row whose WHERE re-checks
 * that it is still queued; SQLite serialises writers on the file, so of the processes sharing it exactly
 * one gets the row back. Cancel and reap are IMMEDIATE transactions.
 */
export class SqliteExecutionStore implements ExecutionStore {
  readonly #db: SqliteDatabase;
  readonly #sql: StatementCache;

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#db = db;
    this.#sql = new StatementCache(db);
    guardStoreMethods<SqliteExecutionStore>(
      this,
      {
        reads: ['anyQueued', 'get', 'list', 'counts', 'workers'],
        writes: [
          'enqueue',
          'claim',
          'heartbeat',
          'release',
          'finish',
          'cancel',
          'reap',
          'prune',
          'upsertWorker',
          'removeWorker',
        ],
      },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async enqueue(execution: NewExecution): Promise<Execution> {
    const row = this.#sql
      .get(
        `INSERT INTO executions (${NEW_EXECUTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
         RETURNING ${EXECUTION_COLUMNS}`,
      )
      .get(...newExecutionValues(execution)) as ExecutionRow;
    return toExecution(row);
  }

  async get(scope: RequestScope, id: string): Promise<Execution | null> {
    const row = this.#sql
      .get(`SELECT ${EXECUTION_COLUMNS} FROM executions WHERE tenant_id = ? AND id = ?`)
      .get(scope.tenantId, id) as ExecutionRow | undefined;
    return row ? toExecution(row) : null;
  }

  async list(
    scope: RequestScope,
    options: { status?: ExecutionStatus; limit: number; before?: string },
  ): Promise<Execution[]> {
    const where = ['tenant_id = ?'];
    const values: (string | number)[] = [scope.tenantId];
    if (options.status !== undefined) {
      where.push('status = ?');
      values.push(options.status);
    }
    if (options.before !== undefined) {
      where.push('id < ?');
      values.push(options.before);
    }
    const rows = this.#sql
      .get(
        `SELECT ${EXECUTION_COLUMNS} FROM executions WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`,
      )
      .all(...values, options.limit) as ExecutionRow[];
    return rows.map(toExecution);
  }

  async claim(workerId: string, now: string, leaseExpiresAt: string): Promise<Execution | null> {
    // Idle workers ask often: a read first (WAL readers take no lock), so an empty queue never takes
    // the file's write lock, which would stall every writer behind it and wait out any lock it meets.
    if (!(await this.anyQueued())) return null;
    const row = this.#sql
      .get(
        `UPDATE executions SET status = 'running', worker_id = ?, started_at = ?, lease_expires_at = ?,
           attempts = attempts + 1
         WHERE id = (SELECT id FROM executions WHERE status = 'queued' ORDER BY created_at, id LIMIT 1)
           AND status = 'queued'
         RETURNING ${EXECUTION_COLUMNS}`,
      )
      .get(workerId, now, leaseExpiresAt) as ExecutionRow | undefined;
    return row ? toExecution(row) : null;
  }

  async heartbeat(id: string, workerId: string, leaseExpiresAt: string): Promise<'ok' | 'cancel' | 'lost'> {
    const row = this.#sql
      .get(
        `UPDATE executions SET lease_expires_at = ? WHERE id = ? AND worker_id = ? AND status = 'running'
         RETURNING cancel_requested`,
      )
      .get(leaseExpiresAt, id, workerId) as { cancel_requested: number } | undefined;
    if (!row) return 'lost';
    return row.cancel_requested === 1 ? 'cancel' : 'ok';
  }

  async release(id: string, workerId: string, now: string): Promise<boolean> {
    const cancelled = this.#sql
      .get(
        `UPDATE executions SET status = 'cancelled', cancel_requested = 0, finished_at = ?, lease_expires_at = NULL
         WHERE id = ? AND worker_id = ? AND status = 'running' AND cancel_requested = 1`,
      )
      .run(now, id, workerId).changes;
    if (cancelled === 1) return true;
    const { changes } = this.#sql.get(RELEASE).run(id, workerId);
    return changes === 1;
  }

  async finish(id: string, workerId: string, outcome: ExecutionOutcome): Promise<boolean> {
    const set = OUTCOME_COLUMNS.map((c) => `${c} = ?`).join(', ');
    const { changes } = this.#sql
      .get(
        `UPDATE executions SET ${set}, lease_expires_at = NULL
         WHERE id = ? AND worker_id = ? AND status = 'running'`,
      )
      .run(...outcomeValues(outcome, flag), id, workerId);
    return changes === 1;
  }

  async cancel(scope: RequestScope, id: string, now: string): Promise<Execution | null> {
    const run = this.#db.transaction(() => {
      const changed = this.#sql
        .get(
          `UPDATE executions SET ${cancelSet('1', '?')}
           WHERE tenant_id = ? AND id = ? AND status IN ('queued', 'running')
           RETURNING ${EXECUTION_COLUMNS}`,
        )
        .get(now, scope.tenantId, id) as ExecutionRow | undefined;
      return (
        changed ??
        (this.#sql
          .get(`SELECT ${EXECUTION_COLUMNS} FROM executions WHERE tenant_id = ? AND id = ?`)
          .get(scope.tenantId, id) as ExecutionRow | undefined)
      );
    });
    const row = run.immediate();
    return row ? toExecution(row) : null;
  }

  async reap(now: string, maxAttempts: number, workerCutoff: string): Promise<ReapReport> {
    // Every pool reaps every few seconds: nothing to do is found by a read, without the write lock.
    const expired = this.#sql
      .get("SELECT 1 FROM executions WHERE status = 'running' AND lease_expires_at < ? LIMIT 1")
      .get(now);
    const stale = this.#sql
      .get('SELECT 1 FROM execution_workers WHERE heartbeat_at < ? LIMIT 1')
      .get(workerCutoff);
    if (!expired && !stale) return { requeued: [], failed: [], cancelled: [], workersRemoved: 0 };
    const run = this.#db.transaction((): ReapReport => {
      const cancelled = this.#sql
        .get(
          `UPDATE executions SET status = 'cancelled', cancel_requested = 0, finished_at = ?,
             lease_expires_at = NULL
           WHERE status = 'running' AND lease_expires_at < ? AND cancel_requested = 1
           RETURNING id`,
        )
        .all(now, now) as { id: string }[];
      const failed = this.#sql
        .get(
          `UPDATE executions SET status = 'failed', error = ?, finished_at = ?, lease_expires_at = NULL
           WHERE status = 'running' AND lease_expires_at < ? AND attempts >= ?
           RETURNING id`,
        )
        .all(reapError(maxAttempts), now, now, maxAttempts) as { id: string }[];
      const requeued = this.#sql
        .get(
          `UPDATE executions SET ${REQUEUE_SET}
           WHERE status = 'running' AND lease_expires_at < ? AND attempts < ?
           RETURNING id`,
        )
        .all(now, maxAttempts) as { id: string }[];
      const { changes } = this.#sql
        .get('DELETE FROM execution_workers WHERE heartbeat_at < ?')
        .run(workerCutoff);
      return {
        requeued: requeued.map((r) => r.id).sort(),
        failed: failed.map((r) => r.id).sort(),
        cancelled: cancelled.map((r) => r.id).sort(),
        workersRemoved: changes,
      };
    });
    return run.immediate();
  }

  async anyQueued(): Promise<boolean> {
    return this.#sql.get("SELECT 1 FROM executions WHERE status = 'queued' LIMIT 1").get() !== undefined;
  }

  async counts(): Promise<Record<ExecutionStatus, number>> {
    const rows = this.#sql.get('SELECT status, count(*) AS n FROM executions GROUP BY status').all() as {
      status: ExecutionStatus;
      n: number;
    }[];
    return toCounts(rows);
  }

  async prune(before: string): Promise<number> {
    return this.#sql
      .get(`DELETE FROM executions WHERE status IN ${FINAL_STATUS_LIST} AND finished_at < ?`)
      .run(before).changes;
  }

  async upsertWorker(worker: WorkerRecord): Promise<void> {
    this.#sql
      .get(
        `INSERT INTO execution_workers (${WORKER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
           started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, state = excluded.state,
           execution_id = excluded.execution_id`,
      )
      .run(...workerValues(worker));
  }

  async removeWorker(id: string): Promise<void> {
    this.#sql.get('DELETE FROM execution_workers WHERE id = ?').run(id);
  }

  async workers(): Promise<WorkerRecord[]> {
    const rows = this.#sql
      .get(`SELECT ${WORKER_COLUMNS} FROM execution_workers ORDER BY id`)
      .all() as WorkerRow[];
    return rows.map(toWorkerRecord);
  }
}
