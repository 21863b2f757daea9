import type { Worker } from 'node:worker_threads';
import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

/** Parent → worker: texts to embed, answered under the same id. */
export interface EmbeddingRequest {
  id: number;
  texts: string[];
}

/** Worker → parent: the protocol every embedding worker thread speaks (use-lite, transformers). */
export type EmbeddingReply =
  | { type: 'ready'; dimensions: unknown }
  | { type: 'load-error'; message: string }
  | { type: 'vectors'; id: number; vectors: Float32Array[] }
  | { type: 'embed-error'; id: number; message: string };

/** A worker that could not load its model; `message` is the worker's cause, for the provider's advice. */
export class WorkerLoadError extends Error {}

export interface EmbeddingWorkerSpec {
  /** The provider's name in messages ("use-lite", "model X"). */
  name: string;
  /** Starts a thread that speaks EmbeddingReply. */
  spawn(): Worker;
  loadTimeoutMs: number;
  logger: Logger;
}

interface Pending {
  resolve(vectors: Float32Array[]): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** One started thread and the requests it owes an answer. */
interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Why the thread is gone (exited, failed, overran); set once. */
  failure: string | null;
}

function failThread(thread: Thread, reason: string, logger: Logger): void {
  if (thread.failure !== null) return;
  thread.failure = reason;
  if (thread.pending.size > 0) logger.warn({ reason }, 'embedding worker stopped');
  for (const { reject, timer } of thread.pending.values()) {
    clearTimeout(timer);
    reject(new BrainError('UNAVAILABLE', reason));
  }
  thread.pending.clear();
  void thread.worker.terminate();
}

/** Starts a thread and waits until its model is loaded; rejects with WorkerLoadError, bounded in time. */
function launch(spec: EmbeddingWorkerSpec): Promise<{ thread: Thread; dimensions: unknown }> {
  const worker = spec.spawn();
  // The thread never keeps the process alive by itself; a pending call holds its own timer.
  worker.unref();
  const thread: Thread = { worker, pending: new Map(), failure: null };
  return new Promise((resolve, reject) => {
    let loading = true;
    const fail = (cause: string) => {
      if (loading) {
        loading = false;
        clearTimeout(timer);
        void worker.terminate();
        reject(new WorkerLoadError(cause));
      } else failThread(thread, `${spec.name}: ${cause}`, spec.logger);
    };
    const timer = setTimeout(
      () => fail(`loading took longer than ${spec.loadTimeoutMs} ms`),
      spec.loadTimeoutMs,
    );
    worker.on('message', (reply: EmbeddingReply) => {
      if (reply.type === 'ready' && loading) {
        loading = false;
        clearTimeout(timer);
        resolve({ thread, dimensions: reply.dimensions });
      } else if (reply.type === 'load-error') fail(reply.message);
      else if (reply.type === 'vectors' || reply.type === 'embed-error') {
        const pending = thread.pending.get(reply.id);
        if (!pending) return; // answered after its time limit: dropped
        thread.pending.delete(reply.id);
        clearTimeout(pending.timer);
        if (reply.type === 'vectors') pending.resolve(reply.vectors);
        else pending.reject(new BrainError('UNAVAILABLE', `${spec.name} could not embed: ${reply.message}`));
      }
    });
    worker.on('error', (error) => fail(`the worker thread failed: ${error.message}`));
    worker.on('exit', (code) => fail(`the worker thread exited (code ${code})`));
  });
}

/**
 * An embedding model in a worker thread, seen from the parent: batches go by id, each with its own time
 * limit. A thread that exits, fails or overruns a batch is terminated and the next call starts a fresh
 * one, so one bad batch never disables the provider; a failing restart rejects that call.
 */
export class EmbeddingWorkerClient {
  readonly #spec: EmbeddingWorkerSpec;
  #thread: Promise<Thread>;
  #nextId = 1;
  #closed = false;

  private constructor(spec: EmbeddingWorkerSpec, thread: Thread) {
    this.#spec = spec;
    this.#thread = Promise.resolve(thread);
  }

  /** Starts the first thread; resolves with the dimension its model reported (the caller checks it). */
  static async start(
    spec: EmbeddingWorkerSpec,
  ): Promise<{ client: EmbeddingWorkerClient; dimensions: unknown }> {
    const { thread, dimensions } = await launch(spec);
    return { client: new EmbeddingWorkerClient(spec, thread), dimensions };
  }

  /** 'closed' once closed, else null: a dead thread is replaced on the next call. */
  unavailable(): string | null {
    return this.#closed ? 'closed' : null;
  }

  /** One batch, answered within `timeoutMs` or rejected (and the thread replaced). */
  async embed(texts: string[], timeoutMs: number): Promise<Float32Array[]> {
    const thread = await this.#current();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          failThread(thread, `${this.#spec.name} gave no answer within ${timeoutMs} ms`, this.#spec.logger),
        timeoutMs,
      );
      thread.pending.set(id, { resolve, reject, timer });
      thread.worker.postMessage({ id, texts } satisfies EmbeddingRequest);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const thread = await this.#thread.catch(() => null);
    if (!thread) return;
    failThread(thread, `the ${this.#spec.name} embedder is closed`, this.#spec.logger);
    await thread.worker.terminate();
  }

  async #current(): Promise<Thread> {
    if (this.#closed) throw new BrainError('UNAVAILABLE', `the ${this.#spec.name} embedder is closed`);
    const running = await this.#thread.catch(() => null);
    if (running && running.failure === null) return running;
    // Trigger: the thread died (crash, overrun) or its restart failed. Outcome: a fresh one.
    this.#thread = launch(this.#spec).then(
      ({ thread }) => thread,
      (error: unknown) => {
        throw new BrainError(
          'UNAVAILABLE',
          `${this.#spec.name} could not restart: ${(error as Error).message}`,
        );
      },
    );
    return this.#thread;
  }
}
