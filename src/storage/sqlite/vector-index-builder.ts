import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../core/logger.js';
import type { IndexIdentity } from './vector-index-file.js';

/** What one worker builds: a tenant's index for one model, from `base` (or the saved copy, or nothing). */
export interface BuildJob {
  dbPath: string;
  busyTimeoutMs: number;
  tenantId: string;
  model: string;
  dimensions: number;
  hnsw: { connectivity: number; expansionAdd: number; expansionSearch: number };
  /** The snapshot the main thread serves now; the job applies the changes after its seq. */
  base: { file: string; seq: number } | null;
  /** Where the index is saved across restarts; null: it is not. */
  persist: { dir: string; identity: IndexIdentity; savedSeq: number; saveAfterChanges: number } | null;
  /** Where the handed-over snapshot file goes, and its name's prefix. */
  snapshotDir: string;
  name: string;
  /** Vectors per usearch add() call, and the threads it may use (0: all cores). */
  chunk: number;
  threads: number;
  /** A first build of at least this many vectors posts an exact copy of them before the graph. */
  matrixMin: number;
}

/** The exact copy of a first build's vectors: row i of `vectors` is `rids[i]`. */
export interface MatrixMessage {
  type: 'matrix';
  seq: number;
  rids: Float64Array;
  vectors: Int8Array;
  counts: [string, number][];
}

/** A finished job: its index saved at `file`, reflecting every change up to `seq`. */
export interface ReadyMessage {
  type: 'ready';
  file: string;
  seq: number;
  size: number;
  savedSeq: number;
  /** Whether the job started from the saved copy in the index directory. */
  loaded: boolean;
  counts: [string, number][];
}

export type WorkerMessage =
  | MatrixMessage
  | ReadyMessage
  | { type: 'log'; level: 'warn' | 'info'; message: string; error?: string };

/**
 * Under vitest or vite-node this module runs from its .ts source, which a worker thread cannot load:
 * there the worker gets loader hooks that compile .ts with esbuild (vite's own, so a dev-only path); the
 * built program (dist/) starts the compiled .js directly.
 */
const FROM_SOURCE = import.meta.url.endsWith('.ts');

const TS_HOOKS = `
import { readFile } from 'node:fs/promises';
let esbuild;
export async function initialize(data) { esbuild = await import(data.esbuild); }
export async function resolve(specifier, context, next) {
  try { return await next(specifier, context); } catch (error) {
    if (!specifier.endsWith('.js') || !context.parentURL?.endsWith('.ts')) throw error;
    return next(specifier.slice(0, -3) + '.ts', context);
  }
}
export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const source = await readFile(new URL(url), 'utf8');
  const { code } = esbuild.transformSync(source, { loader: 'ts', format: 'esm', target: 'node20', sourcefile: url });
  return { format: 'module', source: code, shortCircuit: true };
}`;

// An ES module at a data: URL, not an eval'd script: usearch's native loader (bindings) hangs when the
// worker's main script is eval'd.
const TS_BOOTSTRAP = `
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';
register(workerData.hooks, { data: { esbuild: workerData.esbuild } });
await import(workerData.entry);`;

function startWorker(job: BuildJob): Worker {
  if (!FROM_SOURCE)
    return new Worker(new URL('./vector-index-worker.js', import.meta.url), { workerData: job });
  const esbuild = pathToFileURL(createRequire(import.meta.url).resolve('esbuild')).href;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(TS_BOOTSTRAP)}`), {
    // The job itself stays workerData (the worker reads it as such); the bootstrap's needs ride along.
    workerData: {
      ...job,
      hooks: `data:text/javascript,${encodeURIComponent(TS_HOOKS)}`,
      esbuild,
      entry: new URL('./vector-index-worker.ts', import.meta.url).href,
    },
  });
}

/** Why a job ended without an index. */
export class BuildStopped extends Error {}

/**
 * Runs vector index builds in worker threads, one worker per job, so that the HNSW inserts (tens of
 * seconds at 100k) never hold the event loop. close() terminates every running worker.
 */
export class VectorIndexBuilder {
  readonly #logger: Logger;
  readonly #workers = new Map<Worker, Promise<void>>();
  #closed = false;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Runs one job; `onMatrix` receives a first build's exact copy early. Rejects when the worker fails. */
  run(job: BuildJob, onMatrix: (message: MatrixMessage) => void): Promise<ReadyMessage> {
    if (this.#closed) return Promise.reject(new BuildStopped('the vector search is closed'));
    return new Promise((resolve, reject) => {
      const worker = startWorker(job);
      this.#workers.set(worker, new Promise((exited) => worker.once('exit', () => exited())));
      let failure: unknown = null;
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'matrix') onMatrix(message);
        else if (message.type === 'ready') {
          resolve(message);
          // Its job is done: ending it now frees its memory (the source-mode loader thread would keep it).
          void worker.terminate();
        } else this.#logger[message.level]({ err: message.error, tenantId: job.tenantId }, message.message);
      });
      worker.on('error', (error) => {
        failure = error;
      });
      worker.on('exit', (code) => {
        this.#workers.delete(worker);
        // After a resolve these are no-ops.
        if (this.#closed) reject(new BuildStopped('the vector search is closed'));
        else reject(failure ?? new Error(`vector index worker exited with code ${code}`));
      });
    });
  }

  /** Terminates every running worker; their jobs reject with BuildStopped. */
  close(): void {
    this.#closed = true;
    for (const worker of this.#workers.keys()) void worker.terminate();
  }

  /** Resolves once every worker running now has exited. */
  async stopped(): Promise<void> {
    await Promise.all(this.#workers.values());
  }

  /** Workers still running (for tests: none after close). */
  get running(): number {
    return this.#workers.size;
  }
}
