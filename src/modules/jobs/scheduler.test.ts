import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/services/engines.js';
import {
  engineSkipReason,
  openStorage,
  type StorageHarness,
} from '../../../test/services/storage-harness.js';
import { systemClock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import type { JobStore } from './job-store.js';
import { type JobDefinition, Scheduler, type SchedulerOptions } from './scheduler.js';

const SLOT = '2026-06-01T12:00:00.000Z';

for (const engine of ENGINES) {
  const skip = engineSkipReason(engine);
  const suite = skip ? describe.skip : describe;
  suite(`Scheduler on ${engine}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    const opened: StorageHarness[] = [];
    const schedulers: Scheduler[] = [];
    afterEach(async () => {
      await Promise.all(schedulers.splice(0).map((s) => s.stop()));
      await Promise.all(opened.splice(0).map((h) => h.close()));
    });

    async function store(
      env?: Record<string, string>,
    ): Promise<{ jobs: JobStore; env: Record<string, string> }> {
      const h = await openStorage(engine, env ? { env, migrate: false } : {});
      opened.push(h);
      return { jobs: h.storage.stores().jobs, env: h.env };
    }

    function scheduler(jobs: JobStore, defs: JobDefinition[], options: Partial<SchedulerOptions> = {}) {
      const s = new Scheduler({
        store: jobs,
        jobs: defs,
        clock: systemClock,
        logger: silentLogger,
        timezone: 'UTC',
        retries: 2,
        retryDelayMs: 10,
        ...options,
      });
      schedulers.push(s);
      return s;
    }

    const job = (name: string, run: JobDefinition['run'], cron = 'off'): JobDefinition => ({
      name,
      cron,
      description: `the ${name} job`,
      run,
    });

    it('runs a job by hand under its lease, records the run and frees the lease', async () => {
      const { jobs } = await store();
      let held: string[] = [];
      const s = scheduler(jobs, [
        job('backup', async () => {
          held = (await jobs.leases(new Date().toISOString())).map((l) => l.holder);
          return { message: 'brain_1.db.gz' };
        }),
      ]);
      const run = await s.runNow('backup');
      expect(held).toEqual([s.holder]);
      expect(run).toMatchObject({ job: 'backup', outcome: 'succeeded', attempts: 1, trigger: 'manual' });
      expect(await jobs.recentRuns(5)).toEqual([run]);
      expect(await jobs.leases(new Date().toISOString())).toEqual([]);
      await expect(s.runNow('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('retries a failing try with backoff, and records skipped runs as such', async () => {
      const { jobs } = await store();
      let tries = 0;
      const s = scheduler(jobs, [
        job('flaky', async ({ attempt }) => {
          tries += 1;
          if (attempt < 3) throw new Error(`try ${attempt} failed`);
          return { message: 'third time' };
        }),
        job('idle', async () => ({ outcome: 'skipped', message: 'nothing to do' })),
      ]);
      expect(await s.runNow('flaky')).toMatchObject({
        outcome: 'succeeded',
        attempts: 3,
        message: 'third time',
      });
      expect(tries).toBe(3);
      expect(await s.runNow('idle')).toMatchObject({ outcome: 'skipped', message: 'nothing to do' });
      expect(await jobs.pendingDeadLetters()).toBe(0);
    });

    it('puts a run that failed every try in the dead letters, and retries a letter once', async () => {
      const { jobs } = await store();
      let broken = true;
      const s = scheduler(jobs, [
        job('backup', async () => {
          if (broken) throw new Error('disk full');
          return { message: 'ok now' };
        }),
      ]);
      const failed = await s.runNow('backup');
      expect(failed).toMatchObject({ outcome: 'failed', attempts: 3, message: 'disk full' });
      const [letter] = await jobs.deadLetters({ pending: true, limit: 10 });
      expect(letter).toMatchObject({ job: 'backup', attempts: 3, error: 'disk full', retriedAt: null });
      broken = false;
      const id = letter?.id as string;
      expect(await s.retryDeadLetter(id)).toMatchObject({ outcome: 'succeeded', trigger: 'retry' });
      expect(await jobs.deadLetter(id)).toMatchObject({ retryOutcome: 'succeeded' });
      expect(await jobs.pendingDeadLetters()).toBe(0);
      await expect(s.retryDeadLetter(id)).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(s.retryDeadLetter('dl_missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('runs a cron slot once across processes sharing the store, and refuses a manual run meanwhile', async () => {
      const first = await store();
      const second = await store(first.env);
      let runs = 0;
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const slow = () =>
        job('vacuum', async () => {
          runs += 1;
          await gate;
          return {};
        });
      const a = scheduler(first.jobs, [slow()]);
      const b = scheduler(second.jobs, [slow()]);
      const racing = Promise.all([a.runSlot('vacuum', SLOT), b.runSlot('vacuum', SLOT)]);
      // While one holds the lease, a manual run elsewhere is refused with who holds it.
      await new Promise((r) => setTimeout(r, 50));
      await expect(b.runNow('vacuum')).rejects.toMatchObject({ code: 'CONFLICT' });
      release();
      const results = await racing;
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect(runs).toBe(1);
      // The slot was run: a late timer anywhere finds it taken; the next slot runs.
      expect(await b.runSlot('vacuum', SLOT)).toBeNull();
      expect(await b.runSlot('vacuum', '2026-06-01T13:00:00.000Z')).not.toBeNull();
      expect(runs).toBe(2);
    });

    it('fires jobs at their cron times and reports the next run', async () => {
      const { jobs } = await store();
      const fired: number[] = [];
      const s = scheduler(jobs, [
        job(
          'tick',
          async () => {
            fired.push(Date.now());
            return {};
          },
          '* * * * * *',
        ),
        job('never', async () => ({}), 'off'),
      ]);
      const [tick, never] = s.status();
      expect(Date.parse(tick?.nextRun ?? '') - Date.now()).toBeLessThanOrEqual(1000);
      expect(never?.nextRun).toBeNull();
      s.start();
      for (let i = 0; i < 100 && fired.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(fired.length).toBeGreaterThanOrEqual(2);
      const history = await jobs.history();
      expect(history.map((h) => h.job)).toEqual(['tick']);
      expect(history[0]?.last?.trigger).toBe('schedule');
    });

    it('stops a running job on shutdown: recorded, lease freed, no dead letter', async () => {
      const { jobs } = await store();
      let started: () => void = () => undefined;
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      const s = scheduler(jobs, [
        job('backup', ({ signal }) => {
          started();
          return new Promise((_, reject) =>
            signal.addEventListener('abort', () => reject(new Error('aborted'))),
          );
        }),
      ]);
      const run = s.runNow('backup');
      await running;
      await s.stop();
      expect(await run).toMatchObject({ outcome: 'failed', attempts: 1, message: 'aborted' });
      expect(await jobs.pendingDeadLetters()).toBe(0);
      expect(await jobs.leases(new Date().toISOString())).toEqual([]);
    });
  });
}
