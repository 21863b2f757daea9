import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type HubStandIn, startHubStandIn } from '../../../test/embeddings-stand-in.js';
import { writeTinyModel } from '../../../test/tiny-onnx-model.js';
import { BrainError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import type { Embedder, EmbedderSettings } from './embedder.js';
import { createTransformersEmbedder, type TransformersEmbedderOptions } from './transformers-embedder.js';

let root: string;
const open: Embedder[] = [];

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-transformers-'));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.close?.()));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function settings(overrides: Partial<EmbedderSettings> = {}): EmbedderSettings {
  return {
    timeoutMs: 10_000,
    batchSize: 2,
    breakerMaxFailures: 3,
    breakerResetMs: 1000,
    modelsDir: path.join(root, 'models'),
    allowRemoteModels: false,
    ...overrides,
  };
}

async function create(overrides: Partial<EmbedderSettings>, options?: TransformersEmbedderOptions) {
  const embedder = await createTransformersEmbedder(settings(overrides), silentLogger, options);
  open.push(embedder);
  return embedder;
}

async function failure(promise: Promise<unknown>): Promise<BrainError> {
  const error = await promise.then(
    (embedder) => {
      open.push(embedder as Embedder);
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BrainError);
  return error as BrainError;
}

function dot(a: Float32Array | undefined, b: Float32Array | undefined): number {
  let sum = 0;
  for (let i = 0; i < (a?.length ?? 0); i++) sum += (a?.[i] ?? 0) * (b?.[i] ?? 0);
  return sum;
}

describe('transformers embedder on a tiny model built by the test', () => {
  it('loads a hub-named model from modelsDir with remote loading off, and embeds as expected', async () => {
    writeTinyModel(path.join(root, 'models'), 'tiny/bert', { hiddenSize: 16 });
    const embedder = await create({ model: 'tiny/bert' });
    expect(embedder).toMatchObject({
      provider: 'transformers',
      model: 'transformers:tiny/bert:16',
      dimensions: 16,
      inline: false,
    });

    const texts = [
      'The cat sat on the mat',
      'the cat sat',
      'blue sky green tree',
      'The cat sat on the mat',
      'dog',
    ];
    const vectors = await embedder.embed(texts);
    expect(vectors).toHaveLength(5);
    for (const v of vectors) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v).toHaveLength(16);
      expect(Math.sqrt(dot(v, v))).toBeCloseTo(1, 5);
    }
    // Same text, same vector: within a call, across calls, and whatever the padding of its batch.
    expect(Array.from(vectors[3] ?? [])).toEqual(Array.from(vectors[0] ?? []));
    const [again] = await embedder.embed(['The cat sat on the mat']);
    expect(Array.from(again ?? []).map((x) => x.toFixed(5))).toEqual(
      Array.from(vectors[0] ?? []).map((x) => x.toFixed(5)),
    );
    // Texts that share words are closer than texts that don't.
    expect(dot(vectors[0], vectors[1])).toBeGreaterThan(dot(vectors[0], vectors[2]) + 0.1);
  });

  it('reads the dimension from config.json, and takes a model directory path', async () => {
    const dir = writeTinyModel(path.join(root, 'elsewhere'), 'wide-model', { hiddenSize: 24 });
    const embedder = await create({ model: dir, modelsDir: path.join(root, 'unused') });
    expect(embedder.dimensions).toBe(24);
    expect(embedder.model).toBe('transformers:wide-model:24');
    expect((await embedder.embed(['red car']))[0]).toHaveLength(24);
  });

  it('says where to put a missing model when remote loading is off', async () => {
    const modelsDir = path.join(root, 'models');
    const error = await failure(
      createTransformersEmbedder(settings({ model: 'nope/missing' }), silentLogger),
    );
    expect(error.code).toBe('CONFIG_ERROR');
    expect(error.message).toBe(
      `model nope/missing not found in ${modelsDir} and remote loading is off: put the model files in ` +
        `${path.join(modelsDir, 'nope/missing')} or set BRAIN_ALLOW_REMOTE_MODELS=true`,
    );
  });

  it('reports a damaged model file clearly', async () => {
    const dir = writeTinyModel(path.join(root, 'models'), 'tiny/broken');
    fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx'), 'this is not a protobuf');
    const error = await failure(createTransformersEmbedder(settings({ model: 'tiny/broken' }), silentLogger));
    expect(error.code).toBe('CONFIG_ERROR');
    expect(error.message).toMatch(`could not load model tiny/broken from ${dir}: `);
    expect(error.message).toMatch(/Protobuf parsing failed/);
  });

  it('rejects a config.json without hidden_size', async () => {
    const dir = writeTinyModel(path.join(root, 'models'), 'tiny/no-size');
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    delete config.hidden_size;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const error = await failure(
      createTransformersEmbedder(settings({ model: 'tiny/no-size' }), silentLogger),
    );
    expect(error.message).toBe('model tiny/no-size: config.json has no valid hidden_size');
  });

  it('stops embedding once closed, and says why', async () => {
    writeTinyModel(path.join(root, 'models'), 'tiny/closing');
    const embedder = await createTransformersEmbedder(settings({ model: 'tiny/closing' }), silentLogger);
    expect(embedder.unavailable?.()).toBeNull();
    await embedder.close?.();
    expect(embedder.unavailable?.()).toBe('closed');
    const error = await failure(embedder.embed(['after close']).then(() => embedder));
    expect(error.code).toBe('UNAVAILABLE');
  });
});

describe('transformers embedder downloads from a hub (stand-in)', () => {
  let hub: HubStandIn;
  let hubRoot: string;
  beforeAll(async () => {
    hubRoot = path.join(root, 'hub');
    writeTinyModel(hubRoot, 'org/tiny', { hiddenSize: 12 });
    hub = await startHubStandIn(hubRoot);
  });
  afterAll(async () => {
    await hub.close();
  });

  it('downloads a missing model into modelsDir, and later loads it with remote loading off', async () => {
    hub.mode = 'serve';
    const modelsDir = path.join(root, 'download-cache');
    const online = await create(
      { model: 'org/tiny', modelsDir, allowRemoteModels: true },
      { remoteHost: hub.url },
    );
    expect(online.dimensions).toBe(12);
    expect(hub.requests).toContain('/org/tiny/resolve/main/onnx/model.onnx');
    expect(fs.existsSync(path.join(modelsDir, 'org/tiny/onnx/model.onnx'))).toBe(true);
    const [first] = await online.embed(['green tree']);

    const seen = hub.requests.length;
    const offline = await create({ model: 'org/tiny', modelsDir }, { remoteHost: hub.url });
    expect(Array.from((await offline.embed(['green tree']))[0] ?? [])).toEqual(Array.from(first ?? []));
    expect(hub.requests).toHaveLength(seen);
  });

  it('says the download failed, with the cause', async () => {
    hub.mode = 'fail';
    const modelsDir = path.join(root, 'failed-cache');
    const error = await failure(
      createTransformersEmbedder(
        settings({ model: 'org/tiny', modelsDir, allowRemoteModels: true }),
        silentLogger,
        {
          remoteHost: hub.url,
        },
      ),
    );
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(
      /^could not download model org\/tiny: .*Internal server error.*config\.json/,
    );
  });

  it('gives up on a hub that does not answer, within the load timeout', async () => {
    hub.mode = 'hang';
    const modelsDir = path.join(root, 'hung-cache');
    const started = Date.now();
    const error = await failure(
      createTransformersEmbedder(
        settings({ model: 'org/tiny', modelsDir, allowRemoteModels: true }),
        silentLogger,
        {
          remoteHost: hub.url,
          loadTimeoutMs: 1000,
        },
      ),
    );
    expect(error.message).toBe('could not download model org/tiny: downloading took longer than 1000 ms');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
