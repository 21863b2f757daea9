import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StorageStores } from '../storage.js';
import { newMemoryRow } from './memory-store-contract.js';

export interface QueueHarness {
  stores: StorageStores;
  close(): Promise<void>;
}

const A = { tenantId: 'tenant-a' };
const B = { tenantId: 'tenant-b' };
const NOW = '2026-06-01T12:00:00.000Z';
const vector = (n: number) => Float32Array.from({ length: 4 }, (_, i) => (i === n % 4 ? 1 : 0.1));

/** The storage contract of the embedding queue, run unchanged by every driver against a real database. */
export function runEmbeddingQueueContract(
  driver: string,
  open: () => Promise<QueueHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`EmbeddingQueueStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: QueueHarness;
    beforeEach(async () => {
      h = await open();
    });
    afterEach(async () => {
      await h?.close();
    });

    it('queues memories written without a vector, oldest first, across tenants', async () => {
      const { memories, embeddingQueue: queue } = h.stores;
      await queue.switchModel('m1');
      await memories.insert(A, [newMemoryRow('first', { embed_later: true })]);
      await memories.insert(B, [newMemoryRow('second', { embed_later: true })]);
      await memories.insert(A, [
        newMemoryRow('has a vector', { embedding: vector(0), embedding_model: 'm1' }),
      ]);
      expect(await queue.backlog()).toBe(2);
      const next = await queue.nextQueued(10);
      expect(next.map((q) => q.content)).toEqual(['first', 'second']);
      expect(next[0]?.content_hash).toBe(newMemoryRow('first').content_hash);
    });

    it('stores vectors and takes them off the queue; recall then finds them by vector', async () => {
      const { memories, embeddingQueue: queue } = h.stores;
      await queue.switchModel('m1');
      const row = newMemoryRow('alpha beta', { embed_later: true });
      await memories.insert(A, [row]);
      const [item] = await queue.nextQueued(10);
      await queue.storeVectors('m1', [
        { id: row.id, content_hash: item?.content_hash ?? '', vector: vector(1) },
      ]);
      expect(await queue.backlog()).toBe(0);
      const found = await memories.candidates(A, {
        text: 'zzz',
        embedding: vector(1),
        embedding_model: 'm1',
        filter: {},
        limit: 5,
        now: NOW,
      });
      expect(found.vector.map((v) => v.id)).toEqual([row.id]);
      expect(found.vector[0]?.similarity).toBeCloseTo(1, 5);
    });

    it('gives no vector to a memory forgotten or changed since it was read', async () => {
      const { memories, embeddingQueue: queue } = h.stores;
      await queue.switchModel('m1');
      const gone = newMemoryRow('to be forgotten', { embed_later: true });
      const changed = newMemoryRow('to be changed', { embed_later: true });
      await memories.insert(A, [gone, changed]);
      const read = await queue.nextQueued(10);
      await memories.forget(A, { id: gone.id }, { hard: false, now: NOW });
      await memories.update(
        A,
        { id: changed.id },
        { content: 'changed now', content_hash: 'other-hash', embed_later: true },
        NOW,
      );
      await queue.storeVectors(
        'm1',
        read.map((q, i) => ({ id: q.id, content_hash: q.content_hash, vector: vector(i) })),
      );
      // The changed memory waits for a vector of its new content; the forgotten one is gone.
      expect((await queue.nextQueued(10)).map((q) => q.content)).toEqual(['changed now']);
    });

    it('queues every memory without a vector of a new model, once', async () => {
      const { memories, embeddingQueue: queue } = h.stores;
      expect(await queue.switchModel('m1')).toBe(0);
      await memories.insert(A, [
        newMemoryRow('one', { embedding: vector(0), embedding_model: 'm1' }),
        newMemoryRow('two', { embedding: vector(1), embedding_model: 'm1' }),
      ]);
      expect(await queue.switchModel('m1')).toBe(0);
      expect(await queue.switchModel('m2')).toBe(2);
      expect(await queue.switchModel('m2')).toBe(0);
      expect(await queue.backlog()).toBe(2);
    });
  });
}
