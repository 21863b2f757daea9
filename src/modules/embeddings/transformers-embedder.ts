import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { type Embedder, type EmbedderSettings, inBatches } from './embedder.js';
import { EmbeddingWorkerClient, WorkerLoadError } from './embedding-worker.js';

/**
 * The default local model: all-MiniLM-L6-v2 gives 384 dimensions (small vectors, cheap to store and
 * search), runs at a few ms per sentence on CPU, is ~90 MB, and is the most used sentence-transformers
 * model, with ONNX weights published under Xenova/. `Xenova/bge-small-en-v1.5` (also 384) ranks a bit
 * better on retrieval benchmarks and is the alternative to set in BRAIN_EMBEDDING_MODEL.
 */
export const DEFAULT_TRANSFORMERS_MODEL = 'Xenova/all-MiniLM-L6-v2';

export const TRANSFORMERS_INSTALL = 'npm install @huggingface/transformers';
/** Loading reads ~100 MB from disk; downloading it may take minutes on a slow link. */
const LOCAL_LOAD_TIMEOUT_MS = 120_000;
const REMOTE_LOAD_TIMEOUT_MS = 600_000;

export interface TransformersEmbedderOptions {
  /** Where models are downloaded from instead of the Hugging Face Hub (a mirror, as HF_ENDPOINT). */
  remoteHost?: string;
  /** Upper bound on loading the model, downloads included (default 2 min local, 10 min remote). */
  loadTimeoutMs?: number;
}

/** What the worker thread is started with. */
interface WorkerInput {
  packagePath: string;
  model: string;
  modelsDir: string;
  allowRemoteModels: boolean;
  remoteHost: string | null;
}

/**
 * The worker, as source text: onnxruntime-node runs a session synchronously on the calling JS thread
 * (its async `run` is a `setImmediate` around a blocking call), and tokenizing is synchronous too, so
 * in-process inference would stall every request for the length of a batch. Kept as a string so that the
 * same code runs from the built package and under the test runner, which has no TypeScript loader for a
 * worker file. It is CommonJS (eval workers are scripts) and loads the library's CommonJS build. It
 * speaks EmbeddingReply (embedding-worker.ts).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { packagePath, model, modelsDir, allowRemoteModels, remoteHost } = workerData;
const messageOf = (error) => String((error && error.message) || error);
(async () => {
  let extractor;
  try {
    const { env, pipeline, LogLevel } = require(packagePath);
    env.localModelPath = modelsDir;
    env.cacheDir = modelsDir;
    env.allowLocalModels = true;
    env.allowRemoteModels = allowRemoteModels;
    if (remoteHost) env.remoteHost = remoteHost;
    env.logLevel = LogLevel.ERROR;
    extractor = await pipeline('feature-extraction', model, {
      dtype: 'fp32',
      local_files_only: !allowRemoteModels,
    });
  } catch (error) {
    parentPort.postMessage({ type: 'load-error', message: messageOf(error) });
    return;
  }
  parentPort.on('message', async ({ id, texts }) => {
    try {
      const output = await extractor(texts, { pooling: 'mean', normalize: true });
      const [rows, columns] = output.dims;
      const vectors = [];
      for (let r = 0; r < rows; r++) vectors.push(output.data.slice(r * columns, (r + 1) * columns));
      parentPort.postMessage({ type: 'vectors', id, vectors }, vectors.map((v) => v.buffer));
    } catch (error) {
      parentPort.postMessage({ type: 'embed-error', id, message: messageOf(error) });
    }
  });
  parentPort.postMessage({ type: 'ready', dimensions: extractor.model.config.hidden_size });
})();
`;

/** The model as the library is asked for it, and where its files are (or will be) on disk. */
interface ModelSource {
  /** A hub id, or the absolute path of a model directory. */
  model: string;
  /** The name in the stored model id: the hub id, or the directory's name (stable when it moves). */
  name: string;
  dir: string;
  isDirectory: boolean;
}

function modelSource(settings: EmbedderSettings): ModelSource {
  const model = settings.model ?? DEFAULT_TRANSFORMERS_MODEL;
  // A path (absolute, or ./ ../) names a directory read as is; anything else is a hub id under modelsDir.
  if (path.isAbsolute(model) || model.startsWith('.')) {
    const dir = path.resolve(model);
    return { model: dir, name: path.basename(dir), dir, isDirectory: true };
  }
  return { model, name: model, dir: path.join(settings.modelsDir, model), isDirectory: false };
}

function resolvePackage(): string {
  try {
    return createRequire(import.meta.url).resolve('@huggingface/transformers');
  } catch (error) {
    throw new BrainError(
      'UNAVAILABLE',
      'the transformers embedder needs the optional package @huggingface/transformers, which is not ' +
        `installed: run \`${TRANSFORMERS_INSTALL}\` where Brain is installed, or choose another BRAIN_EMBEDDER`,
      { install: TRANSFORMERS_INSTALL },
      { cause: error },
    );
  }
}

/** The weights file the worker asks for (dtype fp32). */
const hasModelFiles = (dir: string) =>
  fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(path.join(dir, 'onnx', 'model.onnx'));

/** Turns the worker's load failure into the error an operator can act on, by what was on disk. */
function loadError(source: ModelSource, settings: EmbedderSettings, present: boolean, cause: string) {
  if (present)
    return new BrainError(
      'CONFIG_ERROR',
      `could not load model ${source.name} from ${source.dir}: ${cause}; replace its files (they may be ` +
        'damaged or incomplete)',
    );
  if (source.isDirectory)
    return new BrainError(
      'CONFIG_ERROR',
      `model directory ${source.dir} has no config.json and onnx/model.onnx: ${cause}`,
    );
  if (!settings.allowRemoteModels)
    return new BrainError(
      'CONFIG_ERROR',
      `model ${source.name} not found in ${settings.modelsDir} and remote loading is off: put the model ` +
        `files in ${source.dir} or set BRAIN_ALLOW_REMOTE_MODELS=true`,
    );
  return new BrainError('UNAVAILABLE', `could not download model ${source.name}: ${cause}`);
}

/** Forwards the worker's console output to the logger, so that nothing reaches stdout (MCP's stdio). */
function forwardOutput(worker: Worker, logger: Logger): void {
  for (const stream of [worker.stdout, worker.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      const line = text.trim();
      if (line) logger.warn({ output: line }, 'transformers worker output');
    });
  }
}

/**
 * A local sentence-embedding model run by transformers.js (ONNX Runtime on CPU) in a worker thread, so
 * the event loop stays free while a batch is computed. `settings.model` is a Hugging Face id, looked up
 * in (and downloaded to) `settings.modelsDir`, or a model directory path. Resolves once the model is
 * loaded; rejects with a CONFIG_ERROR or UNAVAILABLE BrainError that says what to do when it cannot be.
 * A worker that dies or overruns a batch is replaced on the next call.
 */
export async function createTransformersEmbedder(
  settings: EmbedderSettings,
  logger: Logger,
  options: TransformersEmbedderOptions = {},
): Promise<Embedder> {
  const source = modelSource(settings);
  const log = logger.child({ embedder: 'transformers', model: source.name });
  const started = Date.now();
  const workerData: WorkerInput = {
    packagePath: resolvePackage(),
    model: source.model,
    modelsDir: settings.modelsDir,
    allowRemoteModels: settings.allowRemoteModels && !source.isDirectory,
    remoteHost: options.remoteHost ?? null,
  };
  const present = hasModelFiles(source.dir);
  const loadTimeoutMs =
    options.loadTimeoutMs ??
    (workerData.allowRemoteModels && !present ? REMOTE_LOAD_TIMEOUT_MS : LOCAL_LOAD_TIMEOUT_MS);
  const { client, dimensions } = await EmbeddingWorkerClient.start({
    name: `model ${source.name}`,
    spawn: () => {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData, stdout: true, stderr: true });
      forwardOutput(worker, log);
      return worker;
    },
    loadTimeoutMs,
    logger: log,
  }).catch((error: unknown) => {
    if (!(error instanceof WorkerLoadError)) throw error;
    const cause = error.message.replace('loading took', `${present ? 'loading' : 'downloading'} took`);
    throw loadError(source, settings, present, cause);
  });
  if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions <= 0) {
    await client.close();
    throw new BrainError('CONFIG_ERROR', `model ${source.name}: config.json has no valid hidden_size`);
  }
  log.info({ dimensions, ms: Date.now() - started }, 'embedding model loaded');

  const embedBatch = async (batch: string[]): Promise<Float32Array[]> => {
    const answer = await client.embed(batch, settings.timeoutMs);
    if (answer.length !== batch.length || answer.some((v) => v.length !== dimensions))
      throw new BrainError(
        'INTERNAL',
        `model ${source.name} returned ${answer.length} vectors of ${answer[0]?.length} numbers ` +
          `for ${batch.length} texts; expected ${dimensions} numbers each`,
      );
    return answer;
  };

  return {
    provider: 'transformers',
    model: `transformers:${source.name}:${dimensions}`,
    dimensions,
    inline: false,
    embed: (texts) => inBatches(texts, settings.batchSize, embedBatch),
    unavailable: () => client.unavailable(),
    close: () => client.close(),
  };
}
