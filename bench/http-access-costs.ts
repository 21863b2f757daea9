/**
 * What the HTTP access layer costs per request, in-process and in a tight loop: authenticating an API
 * key (its cached path), counting a request against the rate limit (the in-memory limiter of one
 * process), the policy's scope and tenant check, and validating a recall body with its zod schema.
 */
import type { Brain } from '../src/app/build-brain.js';
import { silentLogger } from '../src/core/logger.js';
import { parseInput } from '../src/core/validation.js';
import { Authenticator } from '../src/modules/auth/authenticator.js';
import { Policy } from '../src/modules/auth/policy.js';
import { RateLimits } from '../src/modules/auth/rate-limits.js';
import { recallSchema } from '../src/modules/memory/memory-schemas.js';
import { type Figure, figure } from './stats.js';

/** Calls per timing batch, and how long each operation is timed after its warm-up batches. */
const BATCH = 1000;
const TIME_MS = 300;
const WARM_BATCHES = 5;

/** Microseconds per call of `fn`, awaiting each call as a request handler does. */
async function microsPerCall(fn: (i: number) => unknown): Promise<number> {
  let i = 0;
  for (let b = 0; b < WARM_BATCHES; b++) for (let j = 0; j < BATCH; j++) await fn(i++);
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < TIME_MS) {
    for (let j = 0; j < BATCH; j++) await fn(i++);
    calls += BATCH;
  }
  return ((performance.now() - start) * 1000) / calls;
}

/**
 * Times each access step with `brain`'s settings and key store; `key` is an API key in that store.
 * The limits are set so high that they are counted and never reached, as in the HTTP run with limits on.
 */
export async function accessCosts(brain: Brain, key: string, queries: readonly string[]): Promise<Figure[]> {
  const authenticator = new Authenticator(
    brain.config,
    brain.storage.stores().apiKeys,
    brain.clock,
    silentLogger,
  );
  const principal = await authenticator.authenticate(key);
  const limits = new RateLimits(
    { rateRps: 1_000_000_000, rateBurst: 1_000_000_000, writeDailyLimit: 1_000_000_000 },
    { logger: silentLogger },
  );
  const policy = new Policy({ logger: silentLogger });
  const access = { principal, scope: 'read', action: 'memory.recall', tenantId: principal.tenantId } as const;
  const bodies = queries.map((query) => ({ query, k: 10 }));
  const us = 'µs/call';
  return [
    figure(
      'authenticate an API key (cached)',
      await microsPerCall(() => authenticator.authenticate(key)),
      us,
    ),
    figure(
      'rate limit: count one request (memory)',
      await microsPerCall(() => limits.request(principal.id)),
      us,
    ),
    figure('policy: authorize (scope + tenant)', await microsPerCall(() => policy.authorize(access)), us),
    figure(
      'validate a recall body (parseInput(recallSchema))',
      await microsPerCall((i) => parseInput(recallSchema, bodies[i % bodies.length])),
      us,
    ),
  ];
}
