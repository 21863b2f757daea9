import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmbeddingsStandIn, startEmbeddingsStandIn } from '../../../test/embeddings-stand-in.js';
import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { EmbedderSettings } from './embedder.js';
import { createHashEmbedder } from './hash-embedder.js';
import { createOpenAiEmbedder, type OpenAiEmbedderOptions } from './openai-embedder.js';

const KEY = 'sk-test-very-secret-key';

function recordingLogger() {
  const lines: { level: string; msg: string | undefined; obj: object }[] = [];
  const logger: Logger = {
    debug: (obj, msg) => lines.push({ level: 'debug', msg, obj }),
    info: (obj, msg) => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => lines.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => lines.push({ level: 'error', msg, obj }),
    child: () => logger,
  };
  return { logger, lines, messages: () => lines.map((l) => l.msg) };
}

let server: EmbeddingsStandIn;
beforeEach(async () => {
  server = await startEmbeddingsStandIn();
});
afterEach(async () => {
  await server.close();
});

function settings(overrides: Partial<EmbedderSettings> = {}): EmbedderSettings {
  return {
    url: server.url,
    model: 'text-embedding-3-small',
    dimensions: 8,
    apiKey: KEY,
    timeoutMs: 2000,
    batchSize: 2,
    breakerMaxFailures: 3,
    breakerResetMs: 300,
    modelsDir: '/nonexistent',
    allowRemoteModels: false,
    ...overrides,
  };
}

const fast: OpenAiEmbedderOptions = { initialRetryDelayMs: 1, maxRetries: 3 };
const make = (overrides: Partial<EmbedderSettings> = {}, options = fast, logger = recordingLogger().logger) =>
  createOpenAiEmbedder(settings(overrides), logger, options);

async function rejection(promise: Promise<unknown>): Promise<BrainError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BrainError);
  return error as BrainError;
}

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('openai embedder: requests and answers', () => {
  it('embeds in batches of batchSize, in input order, as unit vectors, with the key and body expected', async () => {
    const embedder = make();
    expect(embedder).toMatchObject({
      provider: 'openai',
      model: 'openai:text-embedding-3-small:8',
      dimensions: 8,
      inline: false,
    });
    const texts = ['red apple pie', 'blue ocean water', 'green forest walk', 'yellow sun light', 'black cat'];
    server.script({ kind: 'ok' }, { kind: 'reversed' });
    const vectors = await embedder.embed(texts);

    expect(server.requests.map((r) => r.body.input)).toEqual([
      texts.slice(0, 2),
      texts.slice(2, 4),
      texts.slice(4),
    ]);
    const expected = await createHashEmbedder(8).embed(texts);
    expect(vectors).toHaveLength(5);
    vectors.forEach((vector, i) => {
      expect(norm(vector)).toBeCloseTo(1, 5);
      expect(Array.from(vector)).toEqual(Array.from(expected[i] ?? []).map((x) => expect.closeTo(x, 5)));
    });
    const first = server.requests[0];
    expect(first?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(first?.body).toMatchObject({
      model: 'text-embedding-3-small',
      encoding_format: 'float',
      dimensions: 8,
    });
  });

  it('sends no Authorization without a key, and no `dimensions` to models that cannot shorten vectors', async () => {
    const embedder = make({ apiKey: undefined, model: 'nomic-embed-text' });
    await embedder.embed(['hello world']);
    expect(server.requests[0]?.headers.authorization).toBeUndefined();
    expect(server.requests[0]?.body).not.toHaveProperty('dimensions');
    expect(embedder.model).toBe('openai:nomic-embed-text:8');
  });

  it('knows the dimensions of OpenAI models without a request, and requires the setting for others', async () => {
    const { logger } = recordingLogger();
    const known = createOpenAiEmbedder(
      settings({ dimensions: undefined, model: 'text-embedding-3-large' }),
      logger,
    );
    expect(known.dimensions).toBe(3072);
    const fallback = createOpenAiEmbedder(settings({ dimensions: undefined, model: undefined }), logger);
    expect(fallback.model).toBe('openai:text-embedding-3-small:1536');
    expect(server.requests).toHaveLength(0);
    const error = (() => {
      try {
        createOpenAiEmbedder(settings({ dimensions: undefined, model: 'mxbai-embed-large' }), logger);
      } catch (e) {
        return e as BrainError;
      }
    })();
    expect(error?.code).toBe('CONFIG_ERROR');
    expect(error?.message).toMatch(/mxbai-embed-large.*BRAIN_EMBEDDING_DIMENSIONS/);
  });

  it.each([
    ['wrong-count', /1 embeddings for 2 inputs/],
    ['wrong-dimension', /embedding 0 has 9 dimensions, expected 8/],
    ['not-finite', /data\.0\.embedding\.0/],
  ] as const)('rejects an answer with %s, naming what was wrong, without retrying', async (kind, pattern) => {
    server.script({ kind });
    const error = await rejection(make().embed(['one two', 'three four']));
    expect(error.message).toMatch(/sent a bad answer/);
    expect(error.message).toMatch(pattern);
    expect(server.requests).toHaveLength(1);
  });

  it('rejects a 200 answer that is not JSON', async () => {
    server.script({ kind: 'status', status: 200, body: 'surely not json' });
    const error = await rejection(make().embed(['one']));
    expect(error.message).toMatch(`the embedding endpoint ${server.url} sent a bad answer: not JSON`);
  });

  it('returns nothing for no texts, without a request', async () => {
    expect(await make().embed([])).toEqual([]);
    expect(server.requests).toHaveLength(0);
  });
});

describe('openai embedder: failures', () => {
  it('retries 500, 429 and a dropped connection with backoff, then succeeds', async () => {
    server.script({ kind: 'status', status: 500 }, { kind: 'status', status: 429 }, { kind: 'drop' });
    const vectors = await make({ breakerMaxFailures: 5 }).embed(['retry me']);
    expect(vectors).toHaveLength(1);
    expect(server.requests).toHaveLength(4);
  });

  it('waits a short Retry-After, and does not retry now when it is long', async () => {
    server.script({ kind: 'status', status: 429, retryAfter: '0.3' });
    await make().embed(['patience']);
    const [first, second] = server.requests;
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(280);

    server.script({ kind: 'status', status: 429, retryAfter: '120' });
    const error = await rejection(make().embed(['later']));
    expect(error.message).toMatch(/HTTP 429/);
    expect(server.requests).toHaveLength(3);
  });

  it('does not retry a 401, and says so without showing the key', async () => {
    server.script({
      kind: 'status',
      status: 401,
      body: `{"error":{"message":"Incorrect API key provided: ${KEY}"}}`,
    });
    const error = await rejection(make().embed(['secret']));
    expect(error.code).toBe('CONFIG_ERROR');
    expect(error.message).toContain(`the embedding endpoint ${server.url} answered HTTP 401`);
    expect(error.message).toContain('BRAIN_EMBEDDING_API_KEY');
    expect(JSON.stringify({ m: error.message, d: error.details })).not.toContain(KEY);
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a 400 or 404, and redacts the key from the endpoint text it quotes', async () => {
    server.script(
      { kind: 'status', status: 400, body: `bad input for key ${KEY}` },
      { kind: 'status', status: 404 },
    );
    const bad = await rejection(make().embed(['x']));
    expect(bad.message).toMatch(/HTTP 400: bad input for key \*\*\*\*/);
    expect(bad.message).not.toContain(KEY);
    const missing = await rejection(make().embed(['x']));
    expect(missing.message).toMatch(/HTTP 404: check BRAIN_EMBEDDING_URL/);
    expect(server.requests).toHaveLength(2);
  });

  it('aborts a request that gets no answer within timeoutMs, and retries it', async () => {
    server.setDefault({ kind: 'hang' });
    const started = Date.now();
    const error = await rejection(
      make({ timeoutMs: 150 }, { initialRetryDelayMs: 1, maxRetries: 1 }).embed(['slow']),
    );
    expect(error.message).toBe(`the embedding endpoint ${server.url} did not answer in time`);
    expect(server.requests).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports an endpoint that refuses connections', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const url = `http://127.0.0.1:${port}/v1`;
    const error = await rejection(
      make({ url }, { initialRetryDelayMs: 1, maxRetries: 1 }).embed(['anyone?']),
    );
    expect(error.message).toMatch(`could not reach the embedding endpoint ${url}: `);
    expect(error.message).toMatch(/ECONNREFUSED/);
  });
});

describe('openai embedder: circuit breaker', () => {
  it('opens after N consecutive failures, fails fast while open, half-opens after the reset time, closes', async () => {
    const log = recordingLogger();
    const embedder = make({}, { initialRetryDelayMs: 1, maxRetries: 0 }, log.logger);
    server.setDefault({ kind: 'status', status: 503 });
    for (let i = 0; i < 3; i++) {
      expect(embedder.unavailable?.()).toBeNull();
      expect((await rejection(embedder.embed(['down']))).message).toMatch(/HTTP 503/);
    }
    const reason = embedder.unavailable?.();
    expect(reason).toMatch(
      new RegExp(
        `^the embedding endpoint ${server.url} failed 3 times in a row; retrying after \\d\\d:\\d\\d:\\d\\d UTC$`,
      ),
    );

    const fastFail = await rejection(embedder.embed(['still down?']));
    expect(fastFail.code).toBe('UNAVAILABLE');
    expect(fastFail.message).toMatch(/^embedding circuit is open: .*retrying after .*HTTP 503/);
    expect(fastFail.details.circuit).toBe('open');
    expect(server.requests).toHaveLength(3);
    expect(log.messages().filter((m) => m === 'embedding circuit opened')).toHaveLength(1);

    await new Promise((resolve) => setTimeout(resolve, 320));
    expect(embedder.unavailable?.()).toBeNull();
    server.setDefault({ kind: 'ok' });
    expect(await embedder.embed(['back up'])).toHaveLength(1);
    expect(await embedder.embed(['and again'])).toHaveLength(1);
    expect(server.requests).toHaveLength(5);
    expect(log.messages().filter((m) => m?.startsWith('embedding circuit'))).toEqual([
      'embedding circuit opened',
      'embedding circuit half-open: trying one request',
      'embedding circuit closed',
    ]);
  });

  it('counts every request, so an open circuit stops the retries of a call', async () => {
    const embedder = make({}, { initialRetryDelayMs: 1, maxRetries: 10 });
    server.setDefault({ kind: 'status', status: 500 });
    const error = await rejection(embedder.embed(['down']));
    expect(error.message).toMatch(/circuit is open/);
    expect(server.requests).toHaveLength(3);
  });

  it('reopens when the trial request after the reset time fails', async () => {
    const embedder = make(
      { breakerMaxFailures: 1, breakerResetMs: 150 },
      { initialRetryDelayMs: 1, maxRetries: 0 },
    );
    server.setDefault({ kind: 'status', status: 500 });
    await rejection(embedder.embed(['a']));
    expect(embedder.unavailable?.()).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 170));
    expect(embedder.unavailable?.()).toBeNull();
    await rejection(embedder.embed(['trial']));
    expect(embedder.unavailable?.()).toMatch(/failed 1 times in a row/);
    expect(server.requests).toHaveLength(2);
  });

  it('does not count configuration errors towards opening the circuit', async () => {
    const embedder = make({ breakerMaxFailures: 1 }, { initialRetryDelayMs: 1, maxRetries: 0 });
    server.setDefault({ kind: 'status', status: 401 });
    await rejection(embedder.embed(['a']));
    await rejection(embedder.embed(['b']));
    expect(embedder.unavailable?.()).toBeNull();
    expect(server.requests).toHaveLength(2);
  });
});
