import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTwoReplicas } from '../../../test/test-http.js';
import type { HttpServer } from './http-server.js';

const logger = pino({ level: 'silent' });
let replicas: Awaited<ReturnType<typeof openTwoReplicas>>;
let a: HttpServer;
let b: HttpServer;

beforeAll(async () => {
  replicas = await openTwoReplicas('brain-idem-', logger);
  ({ a, b } = replicas);
});

afterAll(async () => {
  await replicas?.close();
});

function post(server: HttpServer, url: string, payload: Record<string, unknown>, key?: string) {
  return server.app.inject({
    method: 'POST',
    url,
    payload,
    headers: key === undefined ? {} : { 'idempotency-key': key },
  });
}

async function count(text: string): Promise<number> {
  const res = await a.app.inject({
    method: 'POST',
    url: '/v1/memories/search',
    payload: { query: text, k: 50 },
  });
  return res.json().hits.filter((h: { content: string }) => h.content === text).length;
}

describe('Idempotency-Key', () => {
  it('answers a retry with the first response and writes once, whichever replica the retry reaches', async () => {
    const body = { content: 'Invoice 4471 was paid by bank transfer' };
    const first = await post(a, '/v1/memories', body, 'key-invoice-4471');
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const retry = await post(b, '/v1/memories', body, 'key-invoice-4471');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    // Without the key the same content is a duplicate (200), not a replay: the key made the difference.
    const plain = await post(a, '/v1/memories', body);
    expect(plain.statusCode).toBe(200);
    expect(await count(body.content)).toBe(1);
  });

  it('refuses the key for a different request with 409, naming the header', async () => {
    await post(a, '/v1/memories', { content: 'first use of a key' }, 'key-reused');
    const other = await post(b, '/v1/memories', { content: 'another request, same key' }, 'key-reused');
    expect(other.statusCode).toBe(409);
    expect(other.json().error).toMatchObject({ code: 'CONFLICT', details: { header: 'Idempotency-Key' } });
    expect(await count('another request, same key')).toBe(0);
  });

  it('gives concurrent requests with one key on two replicas one run: the rest replay or wait', async () => {
    const body = { content: 'Concurrent retries of one write' };
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => post(i % 2 ? a : b, '/v1/memories', body, 'key-concurrent')),
    );
    const statuses = answers.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).not.toHaveLength(0);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    for (const r of answers.filter((x) => x.statusCode === 409)) expect(r.headers['retry-after']).toBe('1');
    expect(answers.filter((r) => r.statusCode === 201 && !r.headers['idempotent-replayed'])).toHaveLength(1);
    expect(await count(body.content)).toBe(1);
  });

  it('keeps a bad request answer too, and refuses a malformed key with 400 writing nothing', async () => {
    const bad = await post(a, '/v1/memories', { content: '' }, 'key-bad-body');
    expect(bad.statusCode).toBe(400);
    const again = await post(b, '/v1/memories', { content: '' }, 'key-bad-body');
    expect(again.statusCode).toBe(400);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const long = await post(a, '/v1/memories', { content: 'with a long key' }, 'k'.repeat(256));
    expect(long.statusCode).toBe(400);
    expect(long.json().error.message).toMatch(/Idempotency-Key header: must be at most 255 characters/);
    expect(await count('with a long key')).toBe(0);
  });
});
