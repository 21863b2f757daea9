import type { Logger } from '../../core/logger.js';
import { type Embedder, usableVector } from './embedder.js';

/** A queued memory: the text to embed and the hash it had when queued. */
export interface QueuedText {
  id: string;
  content: string;
  content_hash: string;
}

/**
 * The storage port of the background embedder: memories written without a vector wait in a durable
 * queue (it survives a crash and a restart) until their vector of the active model is stored. Spans
 * every tenant: it is maintenance, never a request's read.
 */
export interface EmbeddingQueueStore {
  /**
   * Queues every live memory that lacks a vector of `model` (after a model change) and records `model`
   * as the store's active one; returns how many were queued. Does nothing when `model` already is.
   */
  switchModel(model: string): Promise<number>;
  /** The oldest queued memories, at most `limit`. */
  nextQueued(limit: number): Promise<QueuedText[]>;
  /**
   * Stores the vectors and takes their memories off the queue. A memory deleted since, or whose content
   * changed since it was read (its hash differs), gets no vector from this batch.
   */
  storeVectors(
    model: string,
    items: { id: string; content_hash: string; vector: Float32Array | null }[],
  ): Promise<void>;
  /** How many memories wait for a vector. */
  backlog(): Promise<number>;
}

export interface EmbeddingQueueStats {
  model: string;
  backlog: number;
  /** Vectors stored since start. */
  embedded: number;
  /** Vectors stored per second over the last batches (0 when idle). */
  perSecond: number;
  /** The last failure, while the queue is backing off; null when healthy. */
  lastError: string | null;
}

export interface EmbeddingQueueOptions {
  store: EmbeddingQueueStore;
  embedder: Embedder;
  logger: Logger;
  batchSize: number;
  /** How often the queue looks for work nobody announced (another process's writes). */
  pollMs?: number;
  /** Longest wait between retries after failures. */
  maxBackoffMs?: number;
}

export interface EmbeddingQueue {
  /** Announces new work: the queue runs at once instead of at the next poll. */
  kick(): void;
  /** Resolves when the backlog is empty (rejects if the queue is stopped first). */
  settle(): Promise<void>;
  stats(): Promise<EmbeddingQueueStats>;
  /** Stops after the batch in flight. */
  stop(): Promise<void>;
}

/** Consecutive failed batches after which settle() gives up. */
const SETTLE_FAILURES = 3;

/**
 * The background embedder: takes queued memories in batches, embeds them with the active model and
 * stores the vectors, yielding to the event loop between batches. Failures (an endpoint down, an open
 * circuit) leave the memories queued and back off exponentially; recall meanwhile finds them by text.
 */
export function startEmbeddingQueue(options: EmbeddingQueueOptions): EmbeddingQueue {
  const { store, embedder, logger, batchSize } = options;
  const pollMs = options.pollMs ?? 5000;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  let stopped = false;
  let embedded = 0;
  let lastError: string | null = null;
  let failures = 0;
  let recent: { count: number; ms: number } = { count: 0, ms: 0 };
  let wake: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;
  /** Failed batches since start, never reset: a waiter counts the failures since it began waiting. */
  let failedBatches = 0;
  let settleWaiters: { resolve: () => void; reject: (e: Error) => void; since: number }[] = [];

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
      timer.unref();
    }).finally(() => {
      if (timer) clearTimeout(timer);
      wake = null;
    });

  async function runBatch(): Promise<number> {
    const items = await store.nextQueued(batchSize);
    if (items.length === 0) return 0;
    const started = performance.now();
    const vectors = await embedder.embed(items.map((i) => i.content));
    await store.storeVectors(
      embedder.model,
      items.map((item, i) => ({
        id: item.id,
        content_hash: item.content_hash,
        vector: usableVector(vectors[i]),
      })),
    );
    embedded += items.length;
    recent = { count: items.length, ms: performance.now() - started };
    return items.length;
  }

  const loop = (async () => {
    while (!stopped) {
      let done = 0;
      try {
        done = await runBatch();
        if (failures > 0) logger.info({ model: embedder.model }, 'embedding queue recovered');
        failures = 0;
        lastError = null;
      } catch (error) {
        failures++;
        failedBatches++;
        lastError = error instanceof Error ? error.message : String(error);
        const backoff = Math.min(maxBackoffMs, 500 * 2 ** Math.min(failures - 1, 16));
        if (failures === 1 || failures % 10 === 0)
          logger.warn(
            { err: error, failures, retryInMs: backoff },
            'embedding queue failed; memories stay queued',
          );
        // Whoever waits for an empty backlog learns why it is not emptying instead of waiting forever:
        // after SETTLE_FAILURES failures in a row while it waited (earlier ones are not its concern).
        if (failures >= SETTLE_FAILURES) {
          const failing = settleWaiters.filter((w) => failedBatches - w.since >= SETTLE_FAILURES);
          settleWaiters = settleWaiters.filter((w) => !failing.includes(w));
          for (const w of failing) w.reject(new Error(`the embedding queue is failing: ${lastError}`));
        }
        await sleep(backoff);
        continue;
      }
      if (done === 0) {
        recent = { count: 0, ms: 0 };
        for (const w of settleWaiters.splice(0)) w.resolve();
        await sleep(pollMs);
      } else {
        // Let requests run between batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  })();

  return {
    kick() {
      wake?.();
    },
    settle() {
      if (stopped) return Promise.reject(new Error('the embedding queue is stopped'));
      const waiting = new Promise<void>((resolve, reject) =>
        settleWaiters.push({ resolve, reject, since: failedBatches }),
      );
      wake?.();
      return waiting;
    },
    async stats() {
      return {
        model: embedder.model,
        backlog: await store.backlog(),
        embedded,
        perSecond: recent.ms > 0 ? (recent.count * 1000) / recent.ms : 0,
        lastError,
      };
    },
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      for (const w of settleWaiters.splice(0)) w.reject(new Error('the embedding queue stopped'));
      settleWaiters = [];
    },
  };
}
