/**
 * Recall's cache of answers and query vectors: served again only while nothing the answer read has
 * changed, whichever process wrote (SQLite: another connection on the file, as another worker;
 * PostgreSQL: another replica, told by the change bus), bounded in bytes, off at 0.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFixedClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/logger.js';
import type { RequestScope } from '../src/core/scope.js';
import type { Embedder } from '../src/modules/embeddings/embedder.js';
import { createHashEmbedder } from '../src/modules/embeddings/hash-embedder.js';
import { createMemoryService, type MemoryService } from '../src/modules/memory/memory-service.js';
import type { RecallResult } from '../src/modules/memory/memory-types.js';
import { RECALL_CACHE_TTL_MS } from '../src/modules/memory/recall-cache.js';
import { openSqliteDatabase } from '../src/storage/sqlite/sqlite-database.js';
import { SqliteEmbeddingQueue } from '../src/storage/sqlite/sqlite-embedding-queue.js';
import { SqliteMemoryStore } from '../src/storage/sqlite/sqlite-memory-store.js';
import { migrateSqlite } from '../src/storage/sqlite/sqlite-migrations.js';
import { SqliteTierStore } from '../src/storage/sqlite/sqlite-tier-store.js';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason, redisUrl } from './services/engines.js';
import { openTestBrain, type TestBrain } from './test-brain.js';

const START = '2026-06-01T12:00:00.000Z';
const A: RequestScope = { tenantId: 'a' };
const B: RequestScope = { tenantId: 'b' };
const MB = 1024 * 1024;

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const done of cleanup.splice(0).reverse()) await done();
});

/** A SQLite file in a temp dir; each `worker()` is a connection, store and service of its own on it. */
function sqliteFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-recall-cache-'));
  const file = path.join(dir, 'brain.db');
  const first = openSqliteDatabase(file, { busyTimeoutMs: 2000, cacheSizeMb: 8 });
  migrateSqlite(first);
  first.close();
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const clock = createFixedClock(START);
  const worker = (cacheBytes = 8 * MB, embedder: Embedder = createHashEmbedder(256)) => {
    const db = openSqliteDatabase(file, { busyTimeoutMs: 2000, cacheSizeMb: 8 });
    const store = new SqliteMemoryStore(db, silentLogger);
    cleanup.push(() => {
      store.vectors.close();
      store.flushTouches();
      db.close();
    });
    const service = createMemoryService({
      store,
      embedder,
      clock,
      logger: silentLogger,
      cacheBytes,
    });
    return { service, store, db };
  };
  return { clock, worker };
}

const ids = (r: RecallResult) => r.hits.map((h) => h.id);
const resultHits = (s: MemoryService) => s.cacheStats().results.hits;

describe('recall cache (SQLite)', () => {
  it('serves a repeated recall from the cache: the same answer, and the hit still counts as an access', async () => {
    const { worker } = sqliteFile();
    const { service } = worker();
    const { id } = await service.remember(A, { content: 'The staging database runs on port 5433' });
    await service.remember(A, { content: 'Lunch is at noon on Fridays' });
    const query = { query: 'staging database port', k: 5 };
    const first = await service.recall(A, query);
    expect(ids(first)).toEqual([id]);
    expect(service.cacheStats().results).toEqual({ hits: 0, misses: 1 });
    const second = await service.recall(A, query);
    expect(second).toEqual(first);
    expect(service.cacheStats().results).toEqual({ hits: 1, misses: 1 });
    // The query vector was cached on the miss; the hit did not need it.
    expect(service.cacheStats().queryVectors).toEqual({ hits: 0, misses: 1 });
    // Both recalls touched the memory; touches do not invalidate.
    expect((await service.get(A, { id })).access_count).toBe(2);
    await service.recall(A, query);
    expect(resultHits(service)).toBe(2);
    // A change of any input is another key: k, a filter, include_cold, the query's text.
    await service.recall(A, { ...query, k: 6 });
    await service.recall(A, { ...query, types: ['fact'] });
    await service.recall(A, { ...query, include_cold: true });
    await service.recall(A, { query: 'Staging database port', k: 5 });
    expect(resultHits(service)).toBe(2);
    // The same query in another tenant is its own entry, and finds nothing of tenant a.
    expect(ids(await service.recall(B, query))).toEqual([]);
    expect(resultHits(service)).toBe(2);
  });

  it("drops a tenant's answers on each write of that tenant (remember, update, forget), not of another", async () => {
    const { worker } = sqliteFile();
    const { service } = worker();
    const query = { query: 'deploy checklist' };
    const { id: first } = await service.remember(A, { content: 'The deploy checklist lives in the wiki' });
    await service.recall(A, query);
    await service.remember(B, { content: 'Tenant b has a deploy checklist too' });
    expect(ids(await service.recall(A, query))).toEqual([first]);
    expect(resultHits(service)).toBe(1);

    const { id: second } = await service.remember(A, { content: 'Deploy checklist: run the migrations' });
    expect(new Set(ids(await service.recall(A, query)))).toEqual(new Set([first, second]));
    expect(resultHits(service)).toBe(1);

    await service.update(A, { id: second, content: 'Run the migrations before traffic moves' });
    expect(ids(await service.recall(A, query))).toEqual([first]);
    await service.forget(A, { id: first });
    expect(ids(await service.recall(A, query))).toEqual([]);
    expect(resultHits(service)).toBe(1);
    await service.rememberMany(A, [{ content: 'A new deploy checklist' }]);
    expect(ids(await service.recall(A, query))).toHaveLength(1);
    expect(resultHits(service)).toBe(1);
  });

  it('is invalidated by a write through another worker on the same file', async () => {
    const { worker } = sqliteFile();
    const one = worker();
    const two = worker();
    const query = { query: 'office wifi password' };
    await one.service.remember(A, { content: 'The office wifi password is on the fridge' });
    const before = await two.service.recall(A, query);
    expect(await two.service.recall(A, query)).toEqual(before);
    expect(resultHits(two.service)).toBe(1);
    const { id } = await one.service.remember(A, { content: 'New office wifi password: hunter2' });
    expect(ids(await two.service.recall(A, query))).toContain(id);
    expect(resultHits(two.service)).toBe(1);
    // And a write of another tenant through the other worker leaves tenant a's answer cached.
    await one.service.remember(B, { content: 'Tenant b office wifi password' });
    await two.service.recall(A, query);
    expect(resultHits(two.service)).toBe(2);
  });

  it('is invalidated by a tier move: a memory sent cold leaves the answer', async () => {
    const { worker } = sqliteFile();
    const { service, db } = worker();
    const query = { query: 'lighthouse keeper' };
    const { id } = await service.remember(A, { content: 'The lighthouse keeper retired in 1990' });
    expect(ids(await service.recall(A, query))).toEqual([id]);
    const from = (await service.get(A, { id })).storage_tier;
    const tiers = new SqliteTierStore(db);
    const ref = (await tiers.rows(A.tenantId, START)).find((r) => r.id === id)?.ref as number;
    const move = { id, from, to: 'cold' as const, reason: 'test', score: 0 };
    const applied = await tiers.apply(A.tenantId, [{ id, ref, score: null, move }], START);
    expect(applied.moved).toHaveLength(1);
    expect(ids(await service.recall(A, query))).toEqual([]);
    expect(ids(await service.recall(A, { ...query, include_cold: true }))).toEqual([id]);
    expect(resultHits(service)).toBe(0);
  });

  it('is invalidated when the background embedder stores a queued vector', async () => {
    const { worker } = sqliteFile();
    // A fake at the edge: the hash embedder presented as a remote provider, so writes queue their vectors.
    const remote: Embedder = { ...createHashEmbedder(256), inline: false };
    const { service, db } = worker(8 * MB, remote);
    const query = { query: 'conference room booking' };
    const { id } = await service.remember(A, { content: 'Book the conference room a day ahead' });
    const before = await service.recall(A, query);
    expect(before.mode).toBe('hybrid');
    expect(before.hits[0]?.signals.vector_similarity).toBeNull();
    const queue = new SqliteEmbeddingQueue(db, silentLogger);
    const queued = await queue.nextQueued(10);
    expect(queued.map((q) => q.id)).toEqual([id]);
    const vectors = await remote.embed(queued.map((q) => q.content));
    await queue.storeVectors(
      remote.model,
      queued.map((q, i) => ({ id: q.id, content_hash: q.content_hash, vector: vectors[i] ?? null })),
    );
    const after = await service.recall(A, query);
    expect(after.hits[0]?.signals.vector_similarity).not.toBeNull();
    expect(resultHits(service)).toBe(0);
  });

  it('serves an answer no longer than the TTL, nor past the expiry of a memory it read', async () => {
    const { worker, clock } = sqliteFile();
    const { service } = worker();
    const query = { query: 'parking permit' };
    await service.remember(A, { content: 'The parking permit renews in March' });
    await service.recall(A, query);
    clock.advance(RECALL_CACHE_TTL_MS - 1);
    await service.recall(A, query);
    expect(resultHits(service)).toBe(1);
    clock.advance(1);
    await service.recall(A, query);
    expect(resultHits(service)).toBe(1);

    const { id } = await service.remember(A, {
      content: 'Temporary parking permit code 4411',
      ttl_seconds: 2,
    });
    expect(ids(await service.recall(A, query))).toContain(id);
    clock.advance(1000);
    expect(ids(await service.recall(A, query))).toContain(id);
    expect(resultHits(service)).toBe(2);
    clock.advance(1000); // the memory expires now, well inside the TTL
    expect(ids(await service.recall(A, query))).not.toContain(id);
    expect(resultHits(service)).toBe(2);
  });

  it('holds no more than its byte budget, evicting the least recently used; 0 turns it off', async () => {
    const { worker } = sqliteFile();
    const small = worker(6000).service;
    await small.remember(A, { content: `alpha beta gamma ${'detail '.repeat(60)}` });
    for (let i = 0; i < 20; i++) await small.recall(A, { query: `alpha variant ${i}` });
    const stats = small.cacheStats();
    expect(stats.maxBytes).toBe(6000);
    expect(stats.bytes).toBeGreaterThan(0);
    expect(stats.bytes).toBeLessThanOrEqual(6000);
    expect(stats.entries).toBeLessThan(40); // 20 answers and 20 query vectors did not all fit
    await small.recall(A, { query: 'alpha variant 0' }); // the oldest: evicted
    expect(small.cacheStats().results.hits).toBe(0);
    await small.recall(A, { query: 'alpha variant 19' }); // the newest: still there
    expect(small.cacheStats().results.hits).toBe(1);

    const off = worker(0).service;
    await off.recall(A, { query: 'alpha' });
    await off.recall(A, { query: 'alpha' });
    expect(off.cacheStats()).toMatchObject({
      results: { hits: 0 },
      queryVectors: { hits: 0 },
      entries: 0,
      bytes: 0,
    });
  });
});

const pgSkip = !postgresBaseUrl();
const buses: { name: string; env: () => Record<string, string> }[] = [
  { name: 'LISTEN/NOTIFY', env: () => ({}) },
  ...(redisUrl() ? [{ name: 'Redis', env: () => ({ BRAIN_REDIS_URL: redisUrl() as string }) }] : []),
];

/** Recalls on `brain` until `done` holds for the answer (the change notice is asynchronous). */
async function eventually(
  brain: TestBrain,
  scope: RequestScope,
  query: object,
  done: (r: RecallResult) => boolean,
): Promise<RecallResult> {
  for (let i = 0; i < 100; i++) {
    const result = await brain.brain.services.memory.recall(scope, query);
    if (done(result)) return result;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the other replica never saw the change');
}

/**
 * Two replicas on one fresh PostgreSQL database, on a fixed clock (no answer ages out, so only a change
 * can make a replica recompute) and with no scheduled job (a rebalance is a change too).
 */
async function twoReplicas(env: Record<string, string> = {}): Promise<{ one: TestBrain; two: TestBrain }> {
  const clock = createFixedClock(START);
  const shared = {
    BRAIN_DATABASE_URL: newPostgresDatabase(),
    BRAIN_EMBEDDER: 'hash',
    BRAIN_SCHEDULER: 'false',
    ...env,
  };
  const one = await openTestBrain('brain-cache-one-', { env: shared, clock });
  cleanup.push(() => one.close());
  const two = await openTestBrain('brain-cache-two-', { env: shared, clock });
  cleanup.push(() => two.close());
  return { one, two };
}

const mem = (t: TestBrain) => t.brain.services.memory;

describe.skipIf(pgSkip)(
  `recall cache across two replicas on one PostgreSQL${pgSkip ? ` (skipped: ${postgresSkipReason()})` : ''}`,
  () => {
    for (const bus of buses)
      it(`drops on one replica the answers a write through the other changed (${bus.name})`, async () => {
        const { one, two } = await twoReplicas(bus.env());
        const query = { query: 'release freeze dates' };

        await mem(one).remember(A, { content: 'The release freeze starts on the 10th' });
        await mem(one).remember(B, { content: 'Tenant b release freeze is in May' });
        const cachedA = await mem(two).recall(A, query);
        expect(cachedA.hits).toHaveLength(1);
        const cachedB = await mem(two).recall(B, query);
        expect(cachedB.hits).toHaveLength(1);
        const hits = () => mem(two).cacheStats().results.hits;
        expect(await mem(two).recall(A, query)).toEqual(cachedA);
        expect(hits()).toBe(1);

        // A write of tenant b through one: two recomputes b once the notice is in...
        await mem(one).remember(B, { content: 'Tenant b release freeze moved to June' });
        await eventually(two, B, query, (r) => r.hits.length === 2);
        // ...and still answers tenant a from its cache.
        const hitsBefore = hits();
        expect(await mem(two).recall(A, query)).toEqual(cachedA);
        expect(hits()).toBe(hitsBefore + 1);

        // A write of tenant a through one: two drops its answer and finds the new memory.
        const { id } = await mem(one).remember(A, { content: 'Release freeze dates: 10th to 20th' });
        const fresh = await eventually(two, A, query, (r) => ids(r).includes(id));
        expect(fresh.hits).toHaveLength(2);
      });

    it('never serves on one replica, after a write through the other was acknowledged, an answer made before it', async () => {
      // The change notice reaches the other replica some time after the writer acknowledged: the cache
      // must not depend on it. Each round caches an answer on two, writes through one, and recalls on
      // two at once: remember, update, forget and a tier move, twenty rounds of each.
      const { one, two } = await twoReplicas();
      const query = { query: 'deploy window' };
      const cacheHits = () => mem(two).cacheStats().results.hits;
      await mem(one).remember(A, { content: 'The deploy window opens on Monday' });
      for (let round = 0; round < 20; round++) {
        await mem(two).recall(A, query);
        const before = cacheHits();
        await mem(two).recall(A, query);
        expect(cacheHits()).toBe(before + 1); // cached on two
        const { id } = await mem(one).remember(A, { content: `Deploy window number ${round} is at noon` });
        expect(ids(await mem(two).recall(A, query))).toContain(id);

        await mem(two).recall(A, query);
        await mem(one).update(A, { id, content: `Deploy window number ${round} moved to the evening` });
        const updated = await mem(two).recall(A, query);
        expect(updated.hits.find((h) => h.id === id)?.content).toContain('evening');

        await mem(two).recall(A, query);
        const tiers = one.brain.storage.stores().tiers;
        const ref = (await tiers.rows(A.tenantId, START)).find((r) => r.id === id)?.ref as number;
        const move = { id, from: 'hot' as const, to: 'cold' as const, reason: 'test', score: 0 };
        expect((await tiers.apply(A.tenantId, [{ id, ref, score: null, move }], START)).moved).toHaveLength(
          1,
        );
        expect(ids(await mem(two).recall(A, query))).not.toContain(id);
      }
      const { id: last } = await mem(one).remember(A, { content: 'The last deploy window is in December' });
      expect(ids(await mem(two).recall(A, query))).toContain(last);
      await mem(one).forget(A, { id: last });
      expect(ids(await mem(two).recall(A, query))).not.toContain(last);
    });
  },
);
