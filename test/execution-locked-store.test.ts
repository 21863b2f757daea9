/**
 * A worker whose store is locked by another process when its run ends (SQLite: a writer holding the
 * file past the busy timeout) keeps the outcome and records it once the lock is gone; meanwhile idle
 * workers keep polling without taking the lock. SQLite only: the lock is the file's.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionView } from '../src/modules/execution/execution-schemas.js';
import { surfaceEngine } from './services/engines.js';
import { openTestBrain, type TestBrain } from './test-brain.js';

let t: TestBrain;

describe.skipIf(surfaceEngine() !== 'sqlite')('execution on a locked SQLite file', () => {
  beforeAll(async () => {
    t = await openTestBrain('brain-exec-lock-', {
      env: { BRAIN_BUSY_TIMEOUT_MS: '50', BRAIN_EXECUTION_LEASE_MS: '4000', BRAIN_WORKER_MIN: '2' },
    });
    expect(t.brain.startExecutionWorkers()).toBe(true);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  it('records the end of a run that finished while another process held the write lock', async () => {
    const { brain } = t;
    const ex = brain.services.executions;
    const queued = await ex.execute(brain.scope, {
      code: 'import time\ntime.sleep(0.4)\n"kept"',
      wait: false,
    });
    let r: ExecutionView = queued;
    for (let i = 0; i < 100 && r.status !== 'running'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      r = await ex.get(brain.scope, { id: queued.id });
    }
    expect(r.status).toBe('running');
    const holder = new Database(brain.config.dbPath);
    holder.exec('BEGIN IMMEDIATE');
    // The run ends at ~0.4 s; the lock holds until 1 s: its first tries to record the end fail.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await ex.get(brain.scope, { id: queued.id })).status).toBe('running');
    holder.exec('ROLLBACK');
    holder.close();
    for (let i = 0; i < 200 && r.status === 'running'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      r = await ex.get(brain.scope, { id: queued.id });
    }
    expect(r).toMatchObject({ status: 'succeeded', result: "'kept'", attempts: 1 });
    // The workers are all still there, and the next run is served.
    expect(brain.executions.status()).toHaveLength(2);
    expect(await ex.execute(brain.scope, { code: '2 + 2' })).toMatchObject({
      status: 'succeeded',
      result: '4',
    });
  });
});
