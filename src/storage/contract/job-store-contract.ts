import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobRun, JobStore } from '../../modules/jobs/job-store.js';

export interface JobStoreHarness {
  stores: { jobs: JobStore };
  /** A second, separate connection to the same store (another process or replica). */
  reopen(): Promise<{ stores: { jobs: JobStore }; close(): Promise<void> }>;
  close(): Promise<void>;
}

const T0 = '2026-06-01T12:00:00.000Z';
const T1 = '2026-06-01T12:00:30.000Z';
const T2 = '2026-06-01T12:02:00.000Z';
const SLOT_A = '2026-06-01T12:00:00.000Z';
const SLOT_B = '2026-06-01T13:00:00.000Z';
const IN_A_MINUTE = '2026-06-01T12:01:00.000Z';

function run(job: string, outcome: JobRun['outcome'], finishedAt: string, message = ''): JobRun {
  return {
    job,
    holder: 'host:1',
    trigger: 'schedule',
    attempts: 1,
    startedAt: finishedAt,
    finishedAt,
    durationMs: 12.5,
    outcome,
    message,
  };
}

/**
 * The storage contract of the scheduler's tables, run unchanged by every driver against a real
 * database: leases held by one holder at a time and each cron slot run once, across connections; run
 * history; dead letters retried once.
 */
export function runJobStoreContract(
  driver: string,
  open: () => Promise<JobStoreHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`JobStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: JobStoreHarness;
    let jobs: JobStore;
    beforeEach(async () => {
      h = await open();
      jobs = h.stores.jobs;
    });
    afterEach(async () => {
      await h?.close();
    });

    const lease = (holder: string, now: string, slot: string | null, expiresAt = IN_A_MINUTE) => ({
      job: 'backup',
      holder,
      now,
      expiresAt,
      slot,
    });

    it('gives a free lease to one holder until it is released or expires', async () => {
      expect(await jobs.acquire(lease('a', T0, null))).toBe(true);
      expect(await jobs.acquire(lease('b', T1, null))).toBe(false);
      expect(await jobs.leases(T1)).toEqual([
        { job: 'backup', holder: 'a', acquiredAt: T0, expiresAt: IN_A_MINUTE },
      ]);
      // Expired (its holder died): another takes it, and the first can no longer renew it.
      expect(await jobs.acquire(lease('b', T2, null, '2026-06-01T12:03:00.000Z'))).toBe(true);
      expect(await jobs.renew('backup', 'a', T2, '2026-06-01T12:05:00.000Z')).toBe(false);
      expect(await jobs.renew('backup', 'b', T2, '2026-06-01T12:05:00.000Z')).toBe(true);
      expect((await jobs.leases(T2))[0]?.expiresAt).toBe('2026-06-01T12:05:00.000Z');
      // A release by someone who does not hold it changes nothing; by the holder, frees it.
      await jobs.release('backup', 'a', T2);
      expect(await jobs.acquire(lease('c', T2, null))).toBe(false);
      await jobs.release('backup', 'b', T2);
      expect(await jobs.leases(T2)).toEqual([]);
      expect(await jobs.acquire(lease('c', T2, null))).toBe(true);
    });

    it('runs each cron slot once: a late timer elsewhere finds the slot taken, the next slot is free', async () => {
      expect(await jobs.acquire(lease('a', T0, SLOT_A))).toBe(true);
      await jobs.release('backup', 'a', T1);
      // Free again, but this slot was run.
      expect(await jobs.acquire(lease('b', T1, SLOT_A))).toBe(false);
      // A manual run (no slot) may run it now, and leaves the slot recorded.
      expect(await jobs.acquire(lease('b', T1, null))).toBe(true);
      await jobs.release('backup', 'b', T1);
      expect(await jobs.acquire(lease('c', T1, SLOT_A))).toBe(false);
      expect(await jobs.acquire(lease('c', T2, SLOT_B))).toBe(true);
      // Leases are per job.
      expect(await jobs.acquire({ ...lease('d', T2, SLOT_B), job: 'vacuum' })).toBe(true);
    });

    it('lets exactly one of several connections take a slot when they race for it', async () => {
      const others = await Promise.all([h.reopen(), h.reopen(), h.reopen()]);
      try {
        const all = [jobs, ...others.map((o) => o.stores.jobs)];
        const results = await Promise.all(all.map((j, i) => j.acquire(lease(`p${i}`, T0, SLOT_A))));
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = `p${results.indexOf(true)}`;
        expect((await jobs.leases(T0)).map((l) => l.holder)).toEqual([winner]);
      } finally {
        await Promise.all(others.map((o) => o.close()));
      }
    });

    it('keeps every run, and reports the newest and newest successful run of each job', async () => {
      expect(await jobs.history()).toEqual([]);
      await jobs.recordRun(run('backup', 'succeeded', T0, 'brain_1.db.gz'));
      await jobs.recordRun(run('backup', 'failed', T1, 'disk full'));
      await jobs.recordRun(run('vacuum', 'skipped', T1, 'ran 2 h ago'));
      const history = await jobs.history();
      expect(history.map((x) => x.job)).toEqual(['backup', 'vacuum']);
      expect(history[0]?.last).toEqual(run('backup', 'failed', T1, 'disk full'));
      expect(history[0]?.lastSuccess).toEqual(run('backup', 'succeeded', T0, 'brain_1.db.gz'));
      expect(history[1]?.lastSuccess).toBeNull();
      expect((await jobs.recentRuns(10)).map((r) => r.message)).toEqual([
        'ran 2 h ago',
        'disk full',
        'brain_1.db.gz',
      ]);
      expect((await jobs.recentRuns(1, 'backup')).map((r) => r.message)).toEqual(['disk full']);
      expect(await jobs.pruneRuns(T1)).toBe(1);
      expect((await jobs.recentRuns(10)).map((r) => r.message)).toEqual(['ran 2 h ago', 'disk full']);
    });

    it('keeps dead letters until retried, and lets one retry claim a letter', async () => {
      await jobs.addDeadLetter({ id: 'dl_1', job: 'backup', attempts: 4, error: 'disk full', failedAt: T0 });
      await jobs.addDeadLetter({ id: 'dl_2', job: 'vacuum', attempts: 4, error: 'locked', failedAt: T1 });
      expect(await jobs.pendingDeadLetters()).toBe(2);
      expect((await jobs.deadLetters({ pending: true, limit: 10 })).map((d) => d.id)).toEqual([
        'dl_2',
        'dl_1',
      ]);
      expect(await jobs.deadLetter('dl_1')).toEqual({
        id: 'dl_1',
        job: 'backup',
        attempts: 4,
        error: 'disk full',
        failedAt: T0,
        retriedAt: null,
        retryOutcome: null,
      });
      expect(await jobs.deadLetter('dl_nope')).toBeNull();
      const other = await h.reopen();
      try {
        const claims = await Promise.all([
          jobs.claimRetry('dl_1', T2),
          other.stores.jobs.claimRetry('dl_1', T2),
        ]);
        expect(claims.filter(Boolean)).toHaveLength(1);
      } finally {
        await other.close();
      }
      await jobs.setRetryOutcome('dl_1', 'succeeded');
      expect(await jobs.pendingDeadLetters()).toBe(1);
      expect((await jobs.deadLetters({ pending: true, limit: 10 })).map((d) => d.id)).toEqual(['dl_2']);
      expect((await jobs.deadLetters({ pending: false, limit: 10 })).map((d) => d.id)).toEqual([
        'dl_2',
        'dl_1',
      ]);
      expect(await jobs.deadLetter('dl_1')).toMatchObject({ retriedAt: T2, retryOutcome: 'succeeded' });
    });
  });
}
