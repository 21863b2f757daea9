import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, norm, semanticEmbedderCases } from '../../../test/embedder-cases.js';
import { isBrainError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import type { Embedder, EmbedderSettings } from './embedder.js';
import { createUseLiteEmbedder, USE_LITE_MODEL } from './use-lite-embedder.js';

const settings: EmbedderSettings = {
  timeoutMs: 30_000,
  batchSize: 4,
  breakerMaxFailures: 3,
  breakerResetMs: 1_000,
  modelsDir: '/nonexistent',
  allowRemoteModels: false,
};

/** OS threads of this process (Linux): a worker thread is one more, until it is terminated. */
const threadCount = () => readdirSync('/proc/self/task').length;

describe('use-lite embedder (the real model in a worker thread)', () => {
  let embedder: Embedder;
  beforeAll(async () => {
    embedder = await createUseLiteEmbedder(settings, silentLogger);
  });
  afterAll(async () => {
    await embedder.close?.();
  });

  it('names its vector space and is not inline', () => {
    expect(embedder.provider).toBe('use-lite');
    expect(embedder.model).toBe(USE_LITE_MODEL);
    expect(embedder.dimensions).toBe(512);
    expect(embedder.inline).toBe(false);
  });

  semanticEmbedderCases(() => embedder);

  it('gives the same vectors in a batch (split by batchSize) as one by one', async () => {
    const texts = ['alpha beta', 'I love hiking in the mountains', 'a', 'tax returns are due', 'zebra'];
    const batch = await embedder.embed(texts);
    expect(batch).toHaveLength(texts.length);
    for (const [i, text] of texts.entries()) {
      const [single] = await embedder.embed([text]);
      expect(cosine(single!, batch[i]!)).toBeGreaterThan(0.9999);
    }
  });

  it('gives all-zero vectors for empty and blank texts, in place', async () => {
    const [empty, words, blank] = await embedder.embed(['', 'hello there', ' \n\t ']);
    expect(empty!.every((v) => v === 0)).toBe(true);
    expect(blank!.every((v) => v === 0)).toBe(true);
    expect(norm(words!)).toBeCloseTo(1, 4);
    expect(await embedder.embed([])).toEqual([]);
  });
});

describe('use-lite embedder lifecycle', () => {
  it('terminates its worker on close and refuses later calls', async () => {
    const before = threadCount();
    const embedder = await createUseLiteEmbedder(settings, silentLogger);
    expect(threadCount()).toBeGreaterThan(before);
    await embedder.close?.();
    expect(threadCount()).toBe(before);
    const error = await embedder.embed(['after close']).catch((e: unknown) => e);
    expect(isBrainError(error) && error.code).toBe('UNAVAILABLE');
  });
});
