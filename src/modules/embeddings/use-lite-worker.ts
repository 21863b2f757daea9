/**
 * The worker thread that runs Universal Sentence Encoder Lite (TensorFlow.js on WebAssembly) so that its
 * ~10 ms per text never holds the server's event loop.
 *
 * Why a function and not a worker file: the parent starts it as `new Worker(USE_LITE_WORKER_SOURCE,
 * { eval: true })`, which runs the same code from dist/ and under vitest (which runs src/*.ts, while a
 * worker thread is plain Node and cannot load TypeScript). So the function must be self-contained: no
 * imports or outer variables, CommonJS `require` only (the model packages are CommonJS).
 */

import type { EmbeddingReply, EmbeddingRequest } from './embedding-worker.js';

/** What the parent passes as workerData: absolute entry points resolved from the parent's location. */
export interface UseLiteWorkerData {
  embeddingsEntry: string;
  modelEntry: string;
}

/** The body of the worker thread. Never called in the parent process. */
export function useLiteWorkerMain(): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const port = parentPort!;
  const data = workerData as UseLiteWorkerData;
  const post = (reply: EmbeddingReply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);
  const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

  // The model and vocabulary load from the package's files (file:// and fs), and TensorFlow.js reads its
  // WebAssembly binary from disk. Should any code path still try a fetch, it fails here instead of
  // reaching the network.
  globalThis.fetch = () => Promise.reject(new Error('use-lite: network access is disabled in this worker'));

  const start = async () => {
    const { initModel } = require(data.embeddingsEntry) as {
      initModel(source: unknown): Promise<{ embed(texts: string[]): Promise<number[][]> }>;
    };
    const { modelSource } = require(data.modelEntry) as { modelSource: unknown };
    const model = await initModel(modelSource);
    const probe = await model.embed(['probe']);
    post({ type: 'ready', dimensions: probe[0]?.length ?? 0 });

    // One request at a time: the model is not re-entrant and the thread has nothing else to do.
    let queue: Promise<void> = Promise.resolve();
    port.on('message', (request: EmbeddingRequest) => {
      queue = queue.then(async () => {
        try {
          const raw = await model.embed(request.texts);
          const vectors = raw.map((values) => {
            const vector = Float32Array.from(values);
            let norm = 0;
            for (const v of vector) norm += v * v;
            const inverse = norm > 0 ? 1 / Math.sqrt(norm) : 0;
            for (let i = 0; i < vector.length; i++) vector[i] = vector[i]! * inverse;
            return vector;
          });
          post(
            { type: 'vectors', id: request.id, vectors },
            vectors.map((v) => v.buffer as ArrayBuffer),
          );
        } catch (error) {
          post({ type: 'embed-error', id: request.id, message: messageOf(error) });
        }
      });
    });
  };
  start().catch((error: unknown) => post({ type: 'load-error', message: messageOf(error) }));
}

/** The worker's source, for `new Worker(source, { eval: true })`. */
export const USE_LITE_WORKER_SOURCE = `(${useLiteWorkerMain.toString()})();`;
