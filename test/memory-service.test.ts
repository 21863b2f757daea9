/**
 * The memory service over the real SQLite driver (a temp file): hybrid recall and what explains it,
 * access counts, degrading to text-only without a working embedder, and limits that write nothing.
 */
import { describe, expect, it } from 'vitest';
import type { Embedder } from '../src/modules/embeddings/embedder.js';
import { invalid, scope, setup } from './memory-fixture.js';

/** An embedder whose provider is down: every call fails. */
const failingEmbedder: Embedder = {
  provider: 'openai',
  inline: true,
  model: 'down-v1',
  dimensions: 8,
  embed: () => Promise.reject(new Error('embedding provider unreachable')),
};

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
    expect(top?.signals.text_score).toBeGreaterThan(0);
    expect(top?.signals.vector_similarity).toBeGreaterThan(0);
    expect(top?.signals.relevance).toBeGreaterThan(0);
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

describe('recall relevance floor', () => {
  const unrelated = [
    'The staging database listens on port 5433',
    'Lunch on Fridays is pizza with the team',
    'Alice prefers dark mode in every editor',
    'The deploy script needs Node 20',
    'My sister lives in Lisbon',
    'We use pnpm for the monorepo',
    'Backups run nightly at 2am',
    'The cat is called Pickles',
    'Quarterly review is in March',
  ];

  it.each(['hash', 'use-lite-static'] as const)(
    '%s: an unrelated query returns nothing; a related one still finds its memory',
    async (provider) => {
      const { createEmbedder } = await import('../src/modules/embeddings/create-embedder.js');
      const { silentLogger } = await import('../src/core/logger.js');
      const choice = await createEmbedder(
        provider,
        {
          timeoutMs: 1000,
          batchSize: 64,
          breakerMaxFailures: 5,
          breakerResetMs: 1000,
          modelsDir: '/nonexistent',
          allowRemoteModels: false,
        },
        silentLogger,
      );
      if (!choice.embedder) throw new Error(choice.problem);
      const { service } = setup(choice.embedder);
      await service.rememberMany(
        scope,
        unrelated.map((content) => ({ content })),
      );
      const none = await service.recall(scope, { query: 'zebra quantum marmalade' });
      expect(none.mode).toBe('hybrid');
      expect(none.hits).toEqual([]);
      const some = await service.recall(scope, { query: 'which port does the staging database use' });
      expect(some.hits[0]?.content).toBe('The staging database listens on port 5433');
    },
  );

  it('min_score drops weaker hits and is checked', async () => {
    const { service } = setup();
    await service.rememberMany(scope, [
      { content: 'red apples and green apples' },
      { content: 'apples' },
      { content: 'a red car' },
    ]);
    const all = await service.recall(scope, { query: 'red apples' });
    expect(all.hits.length).toBe(3);
    const cut = (all.hits[0]?.score ?? 0) - 0.0001;
    const strong = await service.recall(scope, { query: 'red apples', min_score: cut });
    expect(strong.hits.map((h) => h.id)).toEqual([all.hits[0]?.id]);
    expect(await invalid(service.recall(scope, { query: 'x', min_score: 2 }))).toContain(
      'min_score: must be from 0 to 1',
    );
  });
});
