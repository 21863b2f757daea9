/**
 * The memory service over the real SQLite driver (a temp file): hybrid recall and what explains it,
 * access counts, degrading to text-only without a working embedder, and limits that write nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFixedClock } from '../src/core/clock.js';
import { BrainError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import type { Embedder } from '../src/modules/embeddings/embedder.js';
import { createHashEmbedder } from '../src/modules/embeddings/hash-embedder.js';
import { createMemoryService } from '../src/modules/memory/memory-service.js';
import { openSqliteDatabase } from '../src/storage/sqlite/sqlite-database.js';
import { SqliteMemoryStore } from '../src/storage/sqlite/sqlite-memory-store.js';
import { migrateSqlite } from '../src/storage/sqlite/sqlite-migrations.js';

const scope = { tenantId: 'default' };
const opened: { close: () => void; dir: string }[] = [];
afterEach(() => {
  for (const { close, dir } of opened.splice(0)) {
    close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function setup(embedder: Embedder | null = createHashEmbedder(256)) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-service-'));
  const db = openSqliteDatabase(path.join(dir, 'brain.db'), { busyTimeoutMs: 2000, cacheSizeMb: 8 });
  migrateSqlite(db);
  const store = new SqliteMemoryStore(db, silentLogger);
  const clock = createFixedClock('2026-06-01T12:00:00.000Z');
  const service = createMemoryService({ store, embedder, clock, logger: silentLogger });
  opened.push({
    dir,
    close: () => {
      store.vectors.close();
      store.flushTouches();
      db.close();
    },
  });
  return { service, clock, count: () => service.list(scope, { limit: 1 }).then((r) => r.total) };
}

/** An embedder whose provider is down: every call fails. */
const failingEmbedder: Embedder = {
  model: 'down-v1',
  dimensions: 8,
  embed: () => Promise.reject(new Error('embedding provider unreachable')),
};

async function invalid(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BrainError);
  expect((error as BrainError).code).toBe('INVALID_INPUT');
  return (error as BrainError).message;
}

describe('memory service recall', () => {
  it('fuses text and vector ranks and explains every hit with its signals', async () => {
    const { service } = setup();
    const target = await service.remember(scope, { content: 'The staging database listens on port 5433' });
    await service.remember(scope, { content: 'Lunch on Fridays is pizza with the team' });
    await service.remember(scope, { content: 'The production database runs on a dedicated host' });
    const result = await service.recall(scope, { query: 'which port does the staging database use', k: 3 });
    expect(result.mode).toBe('hybrid');
    expect(result.vector_search).toBe('exact');
    expect(result.reason).toBeUndefined();
    const [top] = result.hits;
    expect(top?.id).toBe(target.id);
    expect(top?.content).toBe('The staging database listens on port 5433');
    expect(top?.signals.text_rank).toBe(1);
    expect(top?.signals.vector_rank).toBe(1);
    expect(top?.signals.bm25).toBeGreaterThan(0);
    expect(top?.signals.vector_similarity).toBeGreaterThan(0);
    expect(top?.signals.rrf).toBeGreaterThan(0);
    for (const signal of ['recency', 'importance', 'access'] as const)
      expect(typeof top?.signals[signal]).toBe('number');
    // Scores explain the order: best first.
    const scores = result.hits.map((h) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });

  it('ranks an important memory above an equally matching unimportant one', async () => {
    const { service } = setup();
    const low = await service.remember(scope, {
      content: 'Alice prefers tea in the morning',
      importance: 0.1,
    });
    const high = await service.remember(scope, {
      content: 'Alice prefers tea in the evening',
      importance: 1,
    });
    const result = await service.recall(scope, { query: 'Alice prefers tea', k: 2 });
    expect(result.hits.map((h) => h.id)).toEqual([high.id, low.id]);
  });

  it('counts each recall in access_count and accessed_at', async () => {
    const { service, clock } = setup();
    const { id } = await service.remember(scope, { content: 'The office wifi password rotates monthly' });
    expect(await service.get(scope, { id })).toMatchObject({ access_count: 0, accessed_at: null });
    clock.advance(60_000);
    await service.recall(scope, { query: 'office wifi password' });
    await service.recall(scope, { query: 'wifi rotates' });
    expect(await service.get(scope, { id })).toMatchObject({
      access_count: 2,
      accessed_at: '2026-06-01T12:01:00.000Z',
    });
  });

  it('runs text-only without an embedder and says so', async () => {
    const { service } = setup(null);
    const { id } = await service.remember(scope, { content: 'Bob is allergic to peanuts' });
    const result = await service.recall(scope, { query: 'peanuts allergy' });
    expect(result).toMatchObject({ mode: 'text-only', reason: 'no-embedder', vector_search: 'none' });
    expect(result.hits.map((h) => h.id)).toEqual([id]);
    expect(result.hits[0]?.signals.vector_rank).toBeNull();
  });

  it('keeps writes and answers recall by text when the embedder fails', async () => {
    const { service, count } = setup(failingEmbedder);
    const { id } = await service.remember(scope, { content: 'The release train leaves every Tuesday' });
    const many = await service.rememberMany(scope, [{ content: 'Deploys freeze on Fridays' }]);
    expect(many).toHaveLength(1);
    expect(await count()).toBe(2);
    const result = await service.recall(scope, { query: 'release train Tuesday' });
    expect(result).toMatchObject({ mode: 'text-only', reason: 'embedder-failed' });
    expect(result.hits[0]?.id).toBe(id);
  });
});

describe('memory service limits', () => {
  it('rejects metadata over 16 KiB and a tag over 64 characters, naming the field, and writes nothing', async () => {
    const { service, count } = setup();
    const metadata = { blob: 'x'.repeat(16 * 1024) };
    expect(await invalid(service.remember(scope, { content: 'x', metadata }))).toMatch(
      /metadata.*16384 bytes/,
    );
    expect(await invalid(service.remember(scope, { content: 'x', tags: ['t'.repeat(65)] }))).toMatch(
      /tags.*64 characters/,
    );
    // One bad item fails the whole batch: nothing of it is written.
    expect(
      await invalid(
        service.rememberMany(scope, [{ content: 'fine' }, { content: 'also fine', importance: 7 }]),
      ),
    ).toMatch(/importance/);
    expect(await count()).toBe(0);
  });
});
