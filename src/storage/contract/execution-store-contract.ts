import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RequestScope } from '../../core/scope.js';
import type {
  Execution,
  ExecutionOutcome,
  ExecutionStore,
  NewExecution,
  WorkerRecord,
} from '../../modules/execution/execution-store.js';

export interface ExecutionHarness {
  stores: { executions: ExecutionStore };
  /** A second, separate connection to the same store (another process or replica). */
  reopen(): Promise<{ stores: { executions: ExecutionStore }; close(): Promise<void> }>;
  close(): Promise<void>;
}

const A: RequestScope = { tenantId: 'tenant-a' };
const B: RequestScope = { tenantId: 'tenant-b' };

/** 2026-06-01T12:00:00Z plus `s` seconds, as ISO text. */
const at = (s: number): string => new Date(Date.UTC(2026, 5, 1, 12, 0, s)).toISOString();

function newRun(id: string, createdAt: string, extra: Partial<NewExecution> = {}): NewExecution {
  return {
    id,
    tenant_id: A.tenantId,
    principal: 'key_1',
    code: `print(${JSON.stringify(id)})`,
    files: [],
    timeout_ms: 10_000,
    created_at: createdAt,
    ...extra,
  };
}

function outcome(extra: Partial<ExecutionOutcome> = {}): ExecutionOutcome {
  return {
    status: 'succeeded',
    exit_code: 0,
    signal: null,
    cpu_time_ms: 41.5,
    wall_ms: 120,
    stdout: 'héllo\n',
    stderr: 'warning: x\n',
    stdout_truncated: true,
    stderr_truncated: false,
    result: "{'a': 1}",
    output_files: [{ name: 'out.csv', content_base64: 'YSxiCjEsMgo=' }],
    error: null,
    finished_at: at(50),
    ...extra,
  };
}

function worker(id: string, heartbeatAt: string, extra: Partial<WorkerRecord> = {}): WorkerRecord {
  return {
    id,
    host: 'host-1',
    pid: 4242,
    started_at: at(0),
    heartbeat_at: heartbeatAt,
    state: 'idle',
    execution_id: null,
    ...extra,
  };
}

/**
 * The storage contract of the execution queue, run unchanged by every driver against a real database:
 * each queued run claimed by exactly one worker (across connections), transitions that only the state
 * they leave admits, the reaper's requeue-or-fail, and tenants kept apart on every read.
 */
export function runExecutionStoreContract(
  driver: string,
  open: () => Promise<ExecutionHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`ExecutionStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: ExecutionHarness;
    let store: ExecutionStore;
    beforeEach(async () => {
      h = await open();
      store = h.stores.executions;
    });
    afterEach(async () => {
      await h?.close();
    });

    /** Enqueues `id` and has worker `w` claim it (it must be the only queued run). */
    const running = async (id: string, w = 'w1', lease = at(60)): Promise<Execution> => {
      await store.enqueue(newRun(id, at(1)));
      const claimed = await store.claim(w, at(2), lease);
      expect(claimed?.id).toBe(id);
      return claimed as Execution;
    };

    it('stores a run as enqueued, with every other field at its start, and reads it back', async () => {
      const files = [
        { name: 'data.csv', content_base64: 'YSxiCjEsMgo=' },
        { name: 'notes é.txt', content_base64: '' },
      ];
      const stored = await store.enqueue(newRun('ex_1', at(0), { files, timeout_ms: 2500 }));
      const expected: Execution = {
        id: 'ex_1',
        tenant_id: 'tenant-a',
        principal: 'key_1',
        code: 'print("ex_1")',
        files,
        status: 'queued',
        exit_code: null,
        signal: null,
        cpu_time_ms: null,
        wall_ms: null,
        stdout: '',
        stderr: '',
        stdout_truncated: false,
        stderr_truncated: false,
        result: null,
        output_files: [],
        error: null,
        timeout_ms: 2500,
        created_at: at(0),
        started_at: null,
        finished_at: null,
        worker_id: null,
        lease_expires_at: null,
        attempts: 0,
        cancel_requested: false,
      };
      expect(stored).toEqual(expected);
      expect(await store.get(A, 'ex_1')).toEqual(expected);
      expect(await store.get(A, 'ex_nope')).toBeNull();
    });

    it('keeps tenants apart: another tenant cannot read, list or cancel a run', async () => {
      await store.enqueue(newRun('ex_1', at(0)));
      expect(await store.get(B, 'ex_1')).toBeNull();
      expect(await store.list(B, { limit: 10 })).toEqual([]);
      expect(await store.cancel(B, 'ex_1', at(5))).toBeNull();
      const after = await store.get(A, 'ex_1');
      expect(after?.status).toBe('queued');
      expect(after?.finished_at).toBeNull();
      await store.enqueue(newRun('ex_2', at(1), { tenant_id: B.tenantId }));
      expect((await store.list(A, { limit: 10 })).map((e) => e.id)).toEqual(['ex_1']);
      expect((await store.list(B, { limit: 10 })).map((e) => e.id)).toEqual(['ex_2']);
    });

    it('lists newest first, by status, paged with before, up to the limit', async () => {
      for (let i = 1; i <= 5; i++) await store.enqueue(newRun(`ex_${i}`, at(i)));
      await store.claim('w1', at(10), at(70)); // ex_1
      await store.claim('w1', at(10), at(70)); // ex_2
      expect((await store.list(A, { limit: 10 })).map((e) => e.id)).toEqual([
        'ex_5',
        'ex_4',
        'ex_3',
        'ex_2',
        'ex_1',
      ]);
      expect((await store.list(A, { limit: 2 })).map((e) => e.id)).toEqual(['ex_5', 'ex_4']);
      expect((await store.list(A, { limit: 2, before: 'ex_4' })).map((e) => e.id)).toEqual(['ex_3', 'ex_2']);
      expect((await store.list(A, { limit: 10, before: 'ex_2' })).map((e) => e.id)).toEqual(['ex_1']);
      expect((await store.list(A, { status: 'running', limit: 10 })).map((e) => e.id)).toEqual([
        'ex_2',
        'ex_1',
      ]);
      expect((await store.list(A, { status: 'queued', limit: 10, before: 'ex_5' })).map((e) => e.id)).toEqual(
        ['ex_4', 'ex_3'],
      );
      expect(await store.list(A, { status: 'failed', limit: 10 })).toEqual([]);
    });

    it('claims the oldest queued run for a worker, and nothing when none is queued', async () => {
      expect(await store.claim('w1', at(0), at(60))).toBeNull();
      // Created later but with the smaller id: the queue goes by created_at, not by id.
      await store.enqueue(newRun('ex_1', at(5)));
      await store.enqueue(newRun('ex_2', at(3), { tenant_id: B.tenantId }));
      const first = await store.claim('w1', at(10), at(70));
      expect(first).toMatchObject({
        id: 'ex_2',
        tenant_id: 'tenant-b',
        status: 'running',
        worker_id: 'w1',
        started_at: at(10),
        lease_expires_at: at(70),
        attempts: 1,
        cancel_requested: false,
        finished_at: null,
      });
      expect(await store.get(B, 'ex_2')).toEqual(first);
      expect((await store.claim('w2', at(11), at(71)))?.id).toBe('ex_1');
      expect(await store.claim('w3', at(12), at(72))).toBeNull();
      expect((await store.get(A, 'ex_1'))?.worker_id).toBe('w2');
    });

    it('gives each queued run to exactly one of many racing claimers on two connections', async () => {
      const ids = Array.from({ length: 20 }, (_, i) => `ex_${String(i).padStart(2, '0')}`);
      for (const [i, id] of ids.entries()) await store.enqueue(newRun(id, at(i)));
      const other = await h.reopen();
      try {
        const stores = [store, other.stores.executions];
        const claimedBy = new Map<string, string[]>();
        const claimer = async (n: number) => {
          const own = stores[n % 2] as ExecutionStore;
          const got: string[] = [];
          for (;;) {
            const e = await own.claim(`w${n}`, at(30), at(90));
            if (!e) break;
            got.push(e.id);
          }
          claimedBy.set(`w${n}`, got);
        };
        await Promise.all(Array.from({ length: 8 }, (_, n) => claimer(n)));
        const all = [...claimedBy.values()].flat();
        expect(all.sort()).toEqual(ids);
        for (const [w, got] of claimedBy)
          for (const id of got) {
            const row = await store.get(A, id);
            expect(row).toMatchObject({ status: 'running', worker_id: w, attempts: 1 });
          }
        expect((await store.counts()).running).toBe(20);
      } finally {
        await other.close();
      }
    });

    it('extends the lease of the holder, tells it of a cancel, and says lost to anyone else', async () => {
      await running('ex_1');
      expect(await store.heartbeat('ex_1', 'w1', at(120))).toBe('ok');
      expect((await store.get(A, 'ex_1'))?.lease_expires_at).toBe(at(120));
      expect(await store.heartbeat('ex_1', 'w2', at(180))).toBe('lost');
      expect(await store.heartbeat('ex_nope', 'w1', at(180))).toBe('lost');
      expect((await store.get(A, 'ex_1'))?.lease_expires_at).toBe(at(120));
      await store.cancel(A, 'ex_1', at(20));
      expect(await store.heartbeat('ex_1', 'w1', at(150))).toBe('cancel');
      expect(await store.finish('ex_1', 'w1', outcome({ status: 'cancelled' }))).toBe(true);
      expect(await store.heartbeat('ex_1', 'w1', at(200))).toBe('lost');
      // A queued run has no holder.
      await store.enqueue(newRun('ex_2', at(30)));
      expect(await store.heartbeat('ex_2', 'w1', at(200))).toBe('lost');
    });

    it('puts a run its worker hands back in the queue, that claim not counted', async () => {
      await running('ex_1');
      expect(await store.release('ex_1', 'w2', at(19))).toBe(false);
      expect((await store.get(A, 'ex_1'))?.worker_id).toBe('w1');
      expect(await store.release('ex_1', 'w1', at(19))).toBe(true);
      expect(await store.get(A, 'ex_1')).toMatchObject({
        status: 'queued',
        worker_id: null,
        started_at: null,
        lease_expires_at: null,
        attempts: 0,
      });
      expect(await store.release('ex_1', 'w1', at(19))).toBe(false);
      expect(await store.heartbeat('ex_1', 'w1', at(100))).toBe('lost');
      expect(await store.claim('w2', at(20), at(80))).toMatchObject({
        id: 'ex_1',
        worker_id: 'w2',
        attempts: 1,
      });
      expect(await store.finish('ex_1', 'w2', outcome())).toBe(true);
      expect(await store.release('ex_1', 'w2', at(19))).toBe(false);
      expect((await store.get(A, 'ex_1'))?.status).toBe('succeeded');
    });

    it('ends cancelled, not queued, a handed-back run whose cancel was asked for', async () => {
      await running('ex_1');
      await store.cancel(A, 'ex_1', at(18));
      expect(await store.release('ex_1', 'w1', at(19))).toBe(true);
      expect(await store.get(A, 'ex_1')).toMatchObject({
        status: 'cancelled',
        finished_at: at(19),
        cancel_requested: false,
        lease_expires_at: null,
      });
      expect(await store.claim('w2', at(20), at(80))).toBeNull();
    });

    it('records the outcome of the holding worker only, and only while the run is running', async () => {
      const claimed = await running('ex_1');
      expect(await store.finish('ex_1', 'w2', outcome())).toBe(false);
      expect(await store.get(A, 'ex_1')).toEqual(claimed);
      expect(await store.finish('ex_1', 'w1', outcome())).toBe(true);
      const done = await store.get(A, 'ex_1');
      // Every field of the outcome written, the lease gone, the rest as claimed.
      expect(done).toEqual({ ...claimed, ...outcome(), lease_expires_at: null });
      // Ended: a second report (a late duplicate) writes nothing.
      expect(
        await store.finish(
          'ex_1',
          'w1',
          outcome({ status: 'timed_out', signal: 'SIGKILL', exit_code: null }),
        ),
      ).toBe(false);
      expect(await store.get(A, 'ex_1')).toEqual(done);
      // A queued run cannot be finished either.
      await store.enqueue(newRun('ex_2', at(3)));
      expect(await store.finish('ex_2', 'w1', outcome())).toBe(false);
      expect((await store.get(A, 'ex_2'))?.status).toBe('queued');
    });

    it('records a failure with its signal, error and no exit code', async () => {
      await running('ex_1');
      const failed = outcome({
        status: 'timed_out',
        exit_code: null,
        signal: 'SIGKILL',
        cpu_time_ms: null,
        stdout: '',
        stdout_truncated: false,
        stderr_truncated: true,
        result: null,
        output_files: [],
        error: 'wall-clock limit',
      });
      expect(await store.finish('ex_1', 'w1', failed)).toBe(true);
      expect(await store.get(A, 'ex_1')).toMatchObject({
        status: 'timed_out',
        exit_code: null,
        signal: 'SIGKILL',
        cpu_time_ms: null,
        wall_ms: 120,
        stdout_truncated: false,
        stderr_truncated: true,
        result: null,
        output_files: [],
        error: 'wall-clock limit',
      });
    });

    it('cancels a queued run at once, flags a running one, and leaves a finished one', async () => {
      await store.enqueue(newRun('ex_1', at(0)));
      const cancelled = await store.cancel(A, 'ex_1', at(5));
      expect(cancelled).toMatchObject({ status: 'cancelled', finished_at: at(5), cancel_requested: false });
      expect(await store.get(A, 'ex_1')).toEqual(cancelled);
      expect(await store.claim('w1', at(6), at(60))).toBeNull();

      const claimed = await running('ex_2');
      const flagged = await store.cancel(A, 'ex_2', at(7));
      expect(flagged).toEqual({ ...claimed, cancel_requested: true });
      expect(await store.get(A, 'ex_2')).toEqual(flagged);

      expect(await store.finish('ex_2', 'w1', outcome({ status: 'cancelled' }))).toBe(true);
      const ended = await store.get(A, 'ex_2');
      expect(await store.cancel(A, 'ex_2', at(9))).toEqual(ended);
      expect(await store.get(A, 'ex_2')).toEqual(ended);
      expect(await store.cancel(A, 'ex_1', at(9))).toEqual(cancelled);
      expect(await store.cancel(A, 'ex_nope', at(9))).toBeNull();
    });

    it('re-queues an expired run with tries left, fails one without, and leaves live leases', async () => {
      await running('ex_1', 'w1', at(60));
      expect(await store.reap(at(59), 2, at(0))).toEqual({
        requeued: [],
        failed: [],
        cancelled: [],
        workersRemoved: 0,
      });
      expect((await store.get(A, 'ex_1'))?.status).toBe('running');

      expect(await store.reap(at(61), 2, at(0))).toEqual({
        requeued: ['ex_1'],
        failed: [],
        cancelled: [],
        workersRemoved: 0,
      });
      expect(await store.get(A, 'ex_1')).toMatchObject({
        status: 'queued',
        worker_id: null,
        lease_expires_at: null,
        attempts: 1,
        finished_at: null,
      });
      // The dead worker's late report is refused.
      expect(await store.finish('ex_1', 'w1', outcome())).toBe(false);

      const again = await store.claim('w2', at(62), at(90));
      expect(again).toMatchObject({ id: 'ex_1', worker_id: 'w2', attempts: 2 });
      await store.enqueue(newRun('ex_2', at(63)));
      expect((await store.claim('w3', at(64), at(300)))?.id).toBe('ex_2');

      const report = await store.reap(at(100), 2, at(0));
      expect(report).toEqual({ requeued: [], failed: ['ex_1'], cancelled: [], workersRemoved: 0 });
      const failed = await store.get(A, 'ex_1');
      expect(failed).toMatchObject({ status: 'failed', finished_at: at(100), attempts: 2 });
      expect(failed?.error).toEqual(expect.any(String));
      expect(failed?.error?.length).toBeGreaterThan(0);
      expect(await store.heartbeat('ex_1', 'w2', at(200))).toBe('lost');
      // ex_2's lease (until at(300)) still holds.
      expect(await store.get(A, 'ex_2')).toMatchObject({ status: 'running', worker_id: 'w3' });
    });

    it('ends cancelled, not re-queued, an expired run whose cancel was asked for', async () => {
      await running('ex_1', 'w1', at(60));
      expect((await store.cancel(A, 'ex_1', at(30)))?.cancel_requested).toBe(true);
      expect(await store.reap(at(61), 2, at(0))).toEqual({
        requeued: [],
        failed: [],
        cancelled: ['ex_1'],
        workersRemoved: 0,
      });
      expect(await store.get(A, 'ex_1')).toMatchObject({
        status: 'cancelled',
        finished_at: at(61),
        cancel_requested: false,
        lease_expires_at: null,
      });
      expect(await store.claim('w2', at(62), at(90))).toBeNull();
    });

    it('removes the workers whose heartbeat is older than the cut-off and keeps the fresh', async () => {
      await store.upsertWorker(worker('w_old', at(10)));
      await store.upsertWorker(worker('w_fresh', at(40), { state: 'busy', execution_id: 'ex_1' }));
      expect(await store.reap(at(50), 2, at(30))).toEqual({
        requeued: [],
        failed: [],
        cancelled: [],
        workersRemoved: 1,
      });
      expect((await store.workers()).map((w) => w.id)).toEqual(['w_fresh']);
    });

    it('counts rows per status across tenants, every status present', async () => {
      expect(await store.counts()).toEqual({
        queued: 0,
        running: 0,
        succeeded: 0,
        failed: 0,
        timed_out: 0,
        cancelled: 0,
      });
      expect(await store.anyQueued()).toBe(false);
      await running('ex_1');
      expect(await store.finish('ex_1', 'w1', outcome())).toBe(true);
      await running('ex_2', 'w2');
      // Running and finished rows are not queued ones.
      expect(await store.anyQueued()).toBe(false);
      await store.enqueue(newRun('ex_3', at(5), { tenant_id: B.tenantId }));
      // Another tenant's run counts: claims are server-wide.
      expect(await store.anyQueued()).toBe(true);
      await store.enqueue(newRun('ex_4', at(6)));
      await store.enqueue(newRun('ex_5', at(7)));
      await store.cancel(A, 'ex_5', at(8));
      expect(await store.counts()).toEqual({
        queued: 2,
        running: 1,
        succeeded: 1,
        failed: 0,
        timed_out: 0,
        cancelled: 1,
      });
    });

    it('prunes only finished runs that ended before the cut-off', async () => {
      await running('ex_1');
      await store.finish('ex_1', 'w1', outcome({ finished_at: at(10) }));
      await running('ex_2');
      await store.finish('ex_2', 'w1', outcome({ status: 'failed', finished_at: at(40) }));
      await store.enqueue(newRun('ex_3', at(0)));
      await store.cancel(A, 'ex_3', at(11));
      await running('ex_4'); // an old running run is never pruned
      await store.enqueue(newRun('ex_5', at(0))); // nor an old queued one
      expect(await store.prune(at(30))).toBe(2);
      expect((await store.list(A, { limit: 10 })).map((e) => e.id)).toEqual(['ex_5', 'ex_4', 'ex_2']);
      expect(await store.prune(at(30))).toBe(0);
    });

    it('adds, replaces and removes worker records', async () => {
      expect(await store.workers()).toEqual([]);
      const b = worker('w_b', at(1));
      await store.upsertWorker(b);
      await store.upsertWorker(worker('w_a', at(2), { host: 'host-2', pid: 7 }));
      const busy = { ...b, heartbeat_at: at(9), state: 'busy' as const, execution_id: 'ex_1' };
      await store.upsertWorker(busy);
      expect(await store.workers()).toEqual([worker('w_a', at(2), { host: 'host-2', pid: 7 }), busy]);
      await store.removeWorker('w_a');
      await store.removeWorker('w_nope');
      expect(await store.workers()).toEqual([busy]);
    });
  });
}
