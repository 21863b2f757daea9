/**
 * Rate limits per principal (requests per second with a burst, writes per day) and tenant quotas, in
 * one process and across two replicas sharing a real Redis.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisSkipReason, redisUrl } from '../../../test/services/engines.js';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer } from '../../../test/test-http.js';
import { createApiKey } from '../../modules/auth/api-keys.js';
import type { HttpServer } from './http-server.js';

const logger = pino({ level: 'silent' });

async function keyOf(t: TestBrain, tenantId = 'default'): Promise<string> {
  const made = await createApiKey(
    t.brain.storage.stores().apiKeys,
    { tenantId, scopes: ['read', 'write', 'admin'] },
    new Date(),
  );
  return made.key;
}

function send(http: HttpServer, key: string, method: string, url: string, payload?: object) {
  return http.app.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(payload ? { payload } : {}),
  });
}

describe('rate limits in one process', () => {
  let t: TestBrain;
  let http: HttpServer;
  beforeAll(async () => {
    t = await openTestBrain('brain-rate-', {
      logger,
      env: { BRAIN_RATE_RPS: '3', BRAIN_RATE_BURST: '2', BRAIN_WRITE_DAILY_LIMIT: '5' },
    });
    http = await createTestHttpServer(t.brain, logger);
  });
  afterAll(async () => {
    await http.close();
    await t.close();
  });

  it('answers 429 with Retry-After past the rate and its burst, per principal', async () => {
    const [a, b] = [await keyOf(t), await keyOf(t)];
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await send(http, a, 'GET', '/v1/memories')).statusCode);
    // 3 per second, then 2 of burst, then refused.
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([429, 429]);
    const refused = await send(http, a, 'GET', '/v1/memories');
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.json().error).toMatchObject({ code: 'RATE_LIMITED', details: { limit: 'rate' } });
    expect(refused.json().error.message).toContain('BRAIN_RATE_RPS');
    // Another principal has its own budget.
    expect((await send(http, b, 'GET', '/v1/memories')).statusCode).toBe(200);
    const metrics = await send(http, b, 'GET', '/metrics');
    expect(metrics.body).toMatch(/brain_rate_limit_rejections_total\{limit="rate"\} [1-9]/);
  });

  it('counts every memory of a batch against the daily write limit, and refuses all of a batch that passes it', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const key = await keyOf(t);
    const batch = { memories: [1, 2, 3, 4].map((i) => ({ content: `daily limit fact ${i}` })) };
    expect((await send(http, key, 'POST', '/v1/memories/batch', batch)).statusCode).toBe(200);
    const over = await send(http, key, 'POST', '/v1/memories/batch', {
      memories: [{ content: 'fifth' }, { content: 'sixth' }],
    });
    expect(over.statusCode).toBe(429);
    expect(over.json().error.details.limit).toBe('daily_writes');
    expect(over.json().error.message).toContain('BRAIN_WRITE_DAILY_LIMIT');
    const stored = await t.brain.services.memory.list({ tenantId: 'default' }, { limit: 100 });
    expect(stored.items.map((m) => m.content).filter((c) => c === 'fifth' || c === 'sixth')).toEqual([]);
  });

  it('counts a write with an Idempotency-Key once: its replays count nothing, and replay even past the limit', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const key = await keyOf(t);
    const post = (content: string, idem: string) =>
      http.app.inject({
        method: 'POST',
        url: '/v1/memories',
        headers: { authorization: `Bearer ${key}`, 'idempotency-key': idem },
        payload: { content },
      });
    const first = await post('idempotent daily fact', 'idem-daily-1');
    expect(first.statusCode).toBe(201);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 400)); // within BRAIN_RATE_RPS
      const replay = await post('idempotent daily fact', 'idem-daily-1');
      expect(replay.statusCode).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
    }
    // Four writes of five are left: the replays took none of them.
    const batch = { memories: [1, 2, 3, 4].map((i) => ({ content: `after the replays ${i}` })) };
    expect((await send(http, key, 'POST', '/v1/memories/batch', batch)).statusCode).toBe(200);
    const over = await post('one too many', 'idem-daily-2');
    expect(over.statusCode).toBe(429);
    expect(over.json().error.details.limit).toBe('daily_writes');
    // The limit is reached, yet a retry of the first write still gets its first answer.
    await new Promise((r) => setTimeout(r, 400));
    const late = await post('idempotent daily fact', 'idem-daily-1');
    expect(late.statusCode).toBe(201);
    expect(late.json()).toEqual(first.json());
  });
});

describe('tenant quotas', () => {
  let t: TestBrain;
  let http: HttpServer;
  beforeAll(async () => {
    t = await openTestBrain('brain-quota-', {
      logger,
      env: { BRAIN_RATE_RPS: '0', BRAIN_QUOTA_MEMORIES: '3', BRAIN_QUOTA_BYTES: '200' },
    });
    http = await createTestHttpServer(t.brain, logger);
  });
  afterAll(async () => {
    await http.close();
    await t.close();
  });

  it('refuses a write past a quota with an error naming it, and writes nothing of it', async () => {
    const key = await keyOf(t, 'quota-t');
    for (const content of ['one', 'two'])
      expect((await send(http, key, 'POST', '/v1/memories', { content })).statusCode).toBe(201);
    const batch = await send(http, key, 'POST', '/v1/memories/batch', {
      memories: [{ content: 'three' }, { content: 'four' }],
    });
    expect(batch.statusCode).toBe(429);
    expect(batch.json().error).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'memories', limit: 3, used: 2, requested: 2 },
    });
    expect(batch.json().error.message).toContain('BRAIN_QUOTA_MEMORIES');
    const big = await send(http, key, 'POST', '/v1/memories', { content: 'x'.repeat(300) });
    expect(big.json().error.details.quota).toBe('bytes');
    expect((await t.brain.services.memory.list({ tenantId: 'quota-t' }, {})).total).toBe(2);
    // Another tenant has its own quota.
    const other = await keyOf(t, 'quota-u');
    expect((await send(http, other, 'POST', '/v1/memories', { content: 'three' })).statusCode).toBe(201);
  });

  it('counts what an update adds against the bytes quota, and lets one that shrinks or fits through', async () => {
    const key = await keyOf(t, 'quota-v');
    const made = await send(http, key, 'POST', '/v1/memories', { content: 'a short fact' });
    const id = made.json().id as string;
    const grown = await send(http, key, 'PATCH', `/v1/memories/${id}`, { content: 'y'.repeat(300) });
    expect(grown.statusCode).toBe(429);
    expect(grown.json().error).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'bytes', limit: 200 },
    });
    const bloated = await send(http, key, 'PATCH', `/v1/memories/${id}`, {
      metadata: { note: 'z'.repeat(250) },
    });
    expect(bloated.json().error.details.quota).toBe('bytes');
    const kept = await t.brain.services.memory.get({ tenantId: 'quota-v' }, { id });
    expect(kept).toMatchObject({ content: 'a short fact', metadata: {} });
    const fits = await send(http, key, 'PATCH', `/v1/memories/${id}`, {
      content: 'a fact of a hundred bytes or so',
    });
    expect(fits.statusCode).toBe(200);
    expect((await send(http, key, 'PATCH', `/v1/memories/${id}`, { content: 'short' })).statusCode).toBe(200);
  });
});

const url = redisUrl();
describe.skipIf(!url)(
  `rate limits across two replicas on one Redis${url ? '' : ` (skipped: ${redisSkipReason()})`}`,
  () => {
    it('holds one limit for a principal whichever replica it reaches', async () => {
      const env = { BRAIN_RATE_RPS: '4', BRAIN_RATE_BURST: '0', BRAIN_REDIS_URL: url as string };
      const one = await openTestBrain('brain-rate-redis-', { logger, env });
      const two = await openTestBrain('brain-rate-redis-', { logger, env, home: one.home });
      const a = await createTestHttpServer(one.brain, logger);
      const b = await createTestHttpServer(two.brain, logger);
      try {
        const key = await keyOf(one);
        const statuses: number[] = [];
        for (let i = 0; i < 8; i++)
          statuses.push((await send(i % 2 === 0 ? a : b, key, 'GET', '/v1/memories')).statusCode);
        expect(statuses.filter((s) => s === 200)).toHaveLength(4);
        expect(statuses.filter((s) => s === 429)).toHaveLength(4);
      } finally {
        await a.close();
        await b.close();
        await two.brain.close();
        await one.close();
      }
    });
  },
);
