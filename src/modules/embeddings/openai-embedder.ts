import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
  retry,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import { z } from 'zod';
import { BrainError, isBrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { type Embedder, type EmbedderSettings, inBatches } from './embedder.js';

export const DEFAULT_OPENAI_URL = 'https://api.openai.com/v1';
export const DEFAULT_OPENAI_MODEL = 'text-embedding-3-small';

/** Native vector sizes of OpenAI's models, so that `dimensions` is known without asking the endpoint. */
export const OPENAI_MODEL_DIMENSIONS: Readonly<Record<string, number>> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

/** Retry-After values up to this are waited out; a longer one fails the call (the queue retries later). */
const MAX_RETRY_AFTER_MS = 10_000;
/** How much of an endpoint's error text goes into a message. */
const MAX_DETAIL_CHARS = 300;

export interface OpenAiEmbedderOptions {
  /** Retries of one batch after a transient failure (default 3). */
  maxRetries?: number;
  /** First backoff delay; it grows exponentially with jitter up to 10 s (default 250 ms). */
  initialRetryDelayMs?: number;
}

const answerSchema = z.object({
  data: z.array(z.object({ index: z.number().int().nonnegative(), embedding: z.array(z.number()) })),
});

/** `details.transient` marks the failures worth retrying and counted by the circuit breaker. */
const transientError = (message: string, details: Record<string, unknown> = {}) =>
  new BrainError('UNAVAILABLE', message, { ...details, transient: true });

const isTransient = (error: unknown) => isBrainError(error) && error.details.transient === true;

type RetryContext = IRetryBackoffContext<unknown>;

/** Waits what the endpoint's Retry-After asks for, when it asked; the exponential backoff otherwise. */
class RetryAfterBackoff implements IBackoffFactory<RetryContext> {
  constructor(private readonly fallback: { next(context: RetryContext): IBackoff<RetryContext> }) {}

  next(context: RetryContext): IBackoff<RetryContext> {
    const exponential = this.fallback.next(context);
    const error = 'error' in context.result ? context.result.error : undefined;
    const asked = isBrainError(error) ? error.details.retryAfterMs : undefined;
    return {
      duration: typeof asked === 'number' ? asked : exponential.duration,
      next: (ctx) => new RetryAfterBackoff(exponential).next(ctx),
    };
  }
}

/** Seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
}

/** The endpoint as shown in messages and logs: never with credentials in it. */
function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** Picks the vector size before any call, so vectors are stored under the right model id from the start. */
function resolveDimensions(model: string, settings: EmbedderSettings): number {
  const dimensions = settings.dimensions ?? OPENAI_MODEL_DIMENSIONS[model];
  if (dimensions === undefined)
    throw new BrainError(
      'CONFIG_ERROR',
      `the vector size of embedding model ${model} is not known: set BRAIN_EMBEDDING_DIMENSIONS to the ` +
        'number of dimensions it returns (e.g. 768 for nomic-embed-text, 1024 for bge-m3)',
      { setting: 'BRAIN_EMBEDDING_DIMENSIONS' },
    );
  return dimensions;
}

/**
 * An embedder for any OpenAI-compatible `POST /embeddings` endpoint (OpenAI, Ollama, vLLM, LM Studio,
 * TEI). Each batch runs under a timeout, retries transient failures with exponential backoff, and goes
 * through a circuit breaker: after `breakerMaxFailures` consecutive failed requests it fails fast for
 * `breakerResetMs`, and `unavailable()` says why, so recall falls back to text. Creating it makes no
 * request; a model outside OPENAI_MODEL_DIMENSIONS needs `settings.dimensions`.
 */
export function createOpenAiEmbedder(
  settings: EmbedderSettings,
  logger: Logger,
  options: OpenAiEmbedderOptions = {},
): Embedder {
  const model = settings.model ?? DEFAULT_OPENAI_MODEL;
  const dimensions = resolveDimensions(model, settings);
  const base = (settings.url ?? DEFAULT_OPENAI_URL).replace(/\/+$/, '');
  const endpoint = displayUrl(base);
  const log = logger.child({ embedder: 'openai', endpoint, model });
  // Only text-embedding-3 models can shorten vectors; vLLM and others reject an unexpected `dimensions`,
  // so for the rest the setting is only the size every answer is checked against.
  const askDimensions = model.startsWith('text-embedding-3') && dimensions !== OPENAI_MODEL_DIMENSIONS[model];

  const resilience = createResilience(settings, options, endpoint, log);
  const request = createRequester({
    base,
    endpoint,
    model,
    dimensions,
    askDimensions,
    apiKey: settings.apiKey,
  });

  return {
    provider: 'openai',
    model: `openai:${model}:${dimensions}`,
    dimensions,
    inline: false,
    embed: (texts) =>
      inBatches(texts, settings.batchSize, (batch) => resilience.run((signal) => request(batch, signal))),
    unavailable: resilience.unavailable,
  };
}

/**
 * Timeout inside circuit breaker inside retry. Retries sit outside the breaker so that every request
 * counts towards opening it, and an open breaker stops the retries of the call that opened it.
 */
function createResilience(
  settings: EmbedderSettings,
  options: OpenAiEmbedderOptions,
  endpoint: string,
  log: Logger,
) {
  const breaker = circuitBreaker(handleWhen(isTransient), {
    halfOpenAfter: settings.breakerResetMs,
    breaker: new ConsecutiveBreaker(settings.breakerMaxFailures),
  });
  const backoff = new ExponentialBackoff({
    initialDelay: options.initialRetryDelayMs ?? 250,
    maxDelay: 10_000,
  });
  // A Retry-After too long to wait is not retried now: the failure is returned and the queue comes back.
  const waitable = (e: Error) =>
    isTransient(e) && !(Number(isBrainError(e) && e.details.retryAfterMs) > MAX_RETRY_AFTER_MS);
  const retryPolicy = retry(handleWhen(waitable), {
    maxAttempts: options.maxRetries ?? 3,
    backoff: new RetryAfterBackoff(backoff),
  });
  const policy = wrap(retryPolicy, breaker, timeout(settings.timeoutMs, TimeoutStrategy.Cooperative));

  let openUntil = 0;
  let lastFailure = '';
  breaker.onBreak((reason) => {
    openUntil = Date.now() + settings.breakerResetMs;
    lastFailure = 'error' in reason ? reason.error.message : 'isolated';
    const until = new Date(openUntil).toISOString();
    log.warn({ failures: settings.breakerMaxFailures, until, lastFailure }, 'embedding circuit opened');
  });
  breaker.onHalfOpen(() => log.info({}, 'embedding circuit half-open: trying one request'));
  breaker.onReset(() => {
    openUntil = 0;
    log.info({}, 'embedding circuit closed');
  });
  const openReason = () =>
    `the embedding endpoint ${endpoint} failed ${settings.breakerMaxFailures} times in a row; ` +
    `retrying after ${new Date(openUntil).toISOString().slice(11, 19)} UTC`;

  return {
    async run<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
      try {
        return await policy.execute(({ signal }) => fn(signal));
      } catch (error) {
        if (!(error instanceof BrokenCircuitError)) throw error;
        throw new BrainError(
          'UNAVAILABLE',
          `embedding circuit is open: ${openReason()} (last error: ${lastFailure})`,
          {
            circuit: 'open',
            until: new Date(openUntil).toISOString(),
          },
        );
      }
    },
    // Once the open period is over the next call is the breaker's trial, so the reason no longer holds.
    unavailable: (): string | null => (openUntil > Date.now() ? openReason() : null),
  };
}

interface RequesterConfig {
  base: string;
  endpoint: string;
  model: string;
  dimensions: number;
  askDimensions: boolean;
  apiKey: string | undefined;
}

/** One HTTP request for one batch: the answer checked and normalized, or an error saying what was wrong. */
function createRequester(config: RequesterConfig) {
  const { endpoint, dimensions, apiKey } = config;
  const redact = (text: string) =>
    (apiKey ? text.split(apiKey).join('****') : text).slice(0, MAX_DETAIL_CHARS);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;

  return async (texts: string[], signal: AbortSignal): Promise<Float32Array[]> => {
    const body = {
      model: config.model,
      input: texts,
      encoding_format: 'float',
      ...(config.askDimensions ? { dimensions } : {}),
    };
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${config.base}/embeddings`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal,
      });
      text = await response.text();
    } catch (error) {
      // The timeout policy aborted the request (cooperative timeout), or the network failed.
      if (signal.aborted) throw transientError(`the embedding endpoint ${endpoint} did not answer in time`);
      const cause =
        error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : '';
      throw transientError(`could not reach the embedding endpoint ${endpoint}: ${redact(String(cause))}`);
    }
    if (!response.ok) throw statusError(response, endpoint, redact(text));
    return parseAnswer(text, texts.length, dimensions, endpoint);
  };
}

function statusError(response: Response, endpoint: string, detail: string): BrainError {
  const status = response.status;
  const what = `the embedding endpoint ${endpoint} answered HTTP ${status}`;
  if (status === 429 || status === 408 || status >= 500)
    return transientError(`${what}${detail ? `: ${detail}` : ''}`, {
      status,
      retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
    });
  // Configuration errors: retrying cannot help, and the body of an auth failure may echo the key.
  if (status === 401 || status === 403)
    return new BrainError('CONFIG_ERROR', `${what}: the API key was refused; check BRAIN_EMBEDDING_API_KEY`, {
      status,
    });
  if (status === 404)
    return new BrainError(
      'CONFIG_ERROR',
      `${what}: check BRAIN_EMBEDDING_URL (up to and including /v1) and BRAIN_EMBEDDING_MODEL`,
      { status },
    );
  return new BrainError('CONFIG_ERROR', `${what}${detail ? `: ${detail}` : ''}`, { status });
}

/** Checks an answer strictly (JSON, count, indexes, sizes, finite numbers) and returns unit vectors in order. */
function parseAnswer(text: string, count: number, dimensions: number, endpoint: string): Float32Array[] {
  const bad = (what: string) =>
    new BrainError('UNAVAILABLE', `the embedding endpoint ${endpoint} sent a bad answer: ${what}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const parsed = answerSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(`${issue?.path.join('.') || 'body'}: ${issue?.message}`);
  }
  const { data } = parsed.data;
  if (data.length !== count) throw bad(`${data.length} embeddings for ${count} inputs`);
  const vectors: (Float32Array | undefined)[] = new Array(count);
  for (const item of data) {
    if (item.index >= count) throw bad(`index ${item.index} out of range for ${count} inputs`);
    if (vectors[item.index]) throw bad(`index ${item.index} appears twice`);
    if (item.embedding.length !== dimensions)
      throw bad(
        `embedding ${item.index} has ${item.embedding.length} dimensions, expected ${dimensions} ` +
          '(check BRAIN_EMBEDDING_DIMENSIONS)',
      );
    const vector = normalize(item.embedding);
    if (!vector) throw bad(`embedding ${item.index} holds a number that is not finite`);
    vectors[item.index] = vector;
  }
  return vectors as Float32Array[];
}

/** Unit length (all zeros stay zeros); null when a number is not finite or the length overflows. */
function normalize(values: number[]): Float32Array | null {
  let norm = 0;
  for (const v of values) norm += v * v;
  if (!Number.isFinite(norm)) return null;
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  return Float32Array.from(values, (v) => v * scale);
}
