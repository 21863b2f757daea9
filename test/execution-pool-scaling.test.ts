/**
 * A pool that keeps no worker (BRAIN_WORKER_MIN=0) starts one when another process queues a run (no
 * kick reaches it: its reaper sees the queue), and the extra worker stops again after idling. On the
 * engine BRAIN_TEST_ENGINE names.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../src/core/ids.js';
import { openTestBrain, type TestBrain } from './test-brain.js';

let t: TestBrain;

beforeAll(async () => {
  t = await openTestBrain('brain-exec-scale-', {
    env: { BRAIN_WORKER_MIN: '0', BRAIN_WORKER_MAX: '1', BRAIN_EXECUTION_LEASE_MS: '1000' },
  });
  expect(t.brain.startExecutionWorkers()).toBe(true);
}, 60_000);

afterAll(async () => {
  await t?.close();
});

describe('a pool with no worker kept', () => {
  it('starts one for a run another process queued, and runs it', async () => {
    const { brain } = t;
    expect(brain.executions.status()).toEqual([]);
    const id = newId('exe');
    // Written straight to the table, as a server or `brain exec --no-wait` elsewhere does.
    await brain.storage.stores().executions.enqueue({
      id,
      tenant_id: brain.scope.tenantId,
      principal: 'elsewhere',
      code: '"picked up"',
      files: [],
      timeout_ms: 5000,
      created_at: new Date().toISOString(),
    });
    let r = await brain.services.executions.get(brain.scope, { id });
    for (let i = 0; i < 100 && r.status !== 'succeeded'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r = await brain.services.executions.get(brain.scope, { id });
    }
    expect(r).toMatchObject({ status: 'succeeded', result: "'picked up'" });
    expect(brain.executions.status()).toHaveLength(1);
  });
});
