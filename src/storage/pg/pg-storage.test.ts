import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../../../test/services/engines.js';
import {
  createTestDatabase,
  freePort,
  type LocalPostgres,
  startLocalPostgres,
} from '../../../test/services/local-postgres.js';
import { openStorage, type StorageHarness } from '../../../test/services/storage-harness.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';

const skip = !postgresBaseUrl();
const label = (name: string) => `${name}${skip ? ` (skipped: ${postgresSkipReason()})` : ''}`;
const NOW = '2026-06-01T12:00:00.000Z';
const A = { tenantId: 'a' };

const open: StorageHarness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.close();
});

/** Two storages (as two replicas) on one fresh database. */
async function twoReplicas(): Promise<[StorageHarness, StorageHarness]> {
  const env = { BRAIN_DATABASE_URL: newPostgresDatabase() };
  const [one, two] = await Promise.all([
    openStorage('postgres', { env, migrate: false }),
    openStorage('postgres', { env, migrate: false }),
  ]);
  open.push(one, two);
  return [one, two];
}

describe.skipIf(skip)(label('PostgreSQL driver: several replicas on one database'), () => {
  it('migrates once when replicas start together', async () => {
    const [one, two] = await twoReplicas();
    const reports = await Promise.all([one.storage.migrate(), two.storage.migrate()]);
    expect(reports.flatMap((r) => r.applied)).toEqual([
      '1_memories',
      '2_fresh_vectors',
      '3_idempotency_keys',
      '4_config',
      '5_security',
      '6_text_statistics',
      '7_jobs',
      '8_tiers',
      '9_episodes',
      '10_versions',
      '11_executions',
      '12_memory_tiers',
      '13_tier_moves_by_memory',
      '14_tier_last_move',
      '15_tier_reasons',
      '16_memory_change_versions',
      '17_superseded_step_aside',
      '18_reworded_hash',
    ]);
    expect(await one.storage.schema()).toEqual({ current: 18, latest: 18 });
  });

  it('keeps one live memory per key under concurrent keyed writes from two replicas', async () => {
    const [one, two] = await twoReplicas();
    await one.storage.migrate();
    const writes = Array.from({ length: 40 }, (_, i) =>
      (i % 2 ? one : two).storage
        .stores()
        .memories.insert(A, [newMemoryRow(`version ${i} of the fact`, { key: 'fact' })]),
    );
    const outcomes = (await Promise.all(writes)).flat();
    expect(outcomes.filter((o) => o.status === 'created')).toHaveLength(1);
    const list = await one.storage
      .stores()
      .memories.list(A, { limit: 100, offset: 0, sort: 'created_at', order: 'desc' }, NOW);
    expect(list.total).toBe(1);
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(1);
  });

  it('stores identical content once under concurrent unkeyed writes from two replicas', async () => {
    const [one, two] = await twoReplicas();
    await one.storage.migrate();
    const outcomes = (
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? one : two).storage
            .stores()
            .memories.insert(A, [newMemoryRow('the same sentence twenty times')]),
        ),
      )
    ).flat();
    expect(outcomes.filter((o) => o.status === 'created')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'duplicate')).toHaveLength(19);
  });

  it('recalls through one replica what was written through the other, its statistics refreshed by the change bus', async () => {
    const [one, two] = await twoReplicas();
    await one.storage.migrate();
    const search = (h: StorageHarness, text: string) =>
      h.storage.stores().memories.candidates(A, {
        text,
        embedding: null,
        embedding_model: null,
        filter: {},
        limit: 10,
        now: NOW,
      });
    await one.storage.stores().memories.insert(A, [newMemoryRow('zebra crossing near the office')]);
    expect((await search(two, 'zebra')).text).toHaveLength(1); // caches the term's count on two
    await one.storage
      .stores()
      .memories.insert(A, [newMemoryRow('a zebra at the zoo'), newMemoryRow('zebra stripes')]);
    // The notice reaches two; its cached count of 'zebra' is dropped, so all three are found and scored.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const found = await search(two, 'zebra');
    expect(found.text).toHaveLength(3);
  });

  it('lets two replicas claim the embedding queue without embedding a row twice', async () => {
    const [one, two] = await twoReplicas();
    await one.storage.migrate();
    await one.storage.stores().embeddingQueue.switchModel('m');
    await one.storage.stores().memories.insert(
      A,
      Array.from({ length: 30 }, (_, i) => newMemoryRow(`queued memory ${i}`, { embed_later: true })),
    );
    const [a, b] = await Promise.all([
      one.storage.stores().embeddingQueue.nextQueued(20),
      two.storage.stores().embeddingQueue.nextQueued(20),
    ]);
    const ids = [...a, ...b].map((q) => q.id);
    expect(ids).toHaveLength(30);
    expect(new Set(ids).size).toBe(30);
  });
});

describe.skipIf(skip)(label('PostgreSQL driver: a database that goes away'), () => {
  let own: LocalPostgres;
  beforeAll(async () => {
    own = await startLocalPostgres();
  });
  afterAll(() => own?.stop());

  it('refuses to open on a server that is not there, naming it without the password', async () => {
    const port = await freePort();
    const error = await openStorage('postgres', {
      env: {
        BRAIN_DATABASE_URL: `postgres://brain:hunter2@127.0.0.1:${port}/brain`,
        BRAIN_DATABASE_CONNECT_TIMEOUT_MS: '500',
      },
    }).then(
      () => null,
      (e: { code: string; message: string }) => e,
    );
    expect(error?.code).toBe('UNAVAILABLE');
    expect(error?.message).toContain(`127.0.0.1:${port}`);
    expect(error?.message).not.toContain('hunter2');
  });

  it('fails calls with UNAVAILABLE and reports not ready while down, and recovers by itself', async () => {
    const url = createTestDatabase(own.baseUrl);
    const h = await openStorage('postgres', {
      env: { BRAIN_DATABASE_URL: url, BRAIN_DATABASE_CONNECT_TIMEOUT_MS: '1000' },
    });
    open.push(h);
    const memories = h.storage.stores().memories;
    await memories.insert(A, [newMemoryRow('written before the outage')]);
    own.pause();
    try {
      await expect(memories.insert(A, [newMemoryRow('written during the outage')])).rejects.toMatchObject({
        code: 'UNAVAILABLE',
      });
      expect((await h.storage.check()).ok).toBe(false);
    } finally {
      own.resume();
    }
    expect((await h.storage.check()).ok).toBe(true);
    await memories.insert(A, [newMemoryRow('written after the outage')]);
    const list = await memories.list(A, { limit: 10, offset: 0, sort: 'created_at', order: 'desc' }, NOW);
    expect(list.items.map((m) => m.content).sort()).toEqual([
      'written after the outage',
      'written before the outage',
    ]);
  });
});
