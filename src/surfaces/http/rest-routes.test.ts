import { Readable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer } from '../../../test/test-http.js';
import { BODY_LIMIT_BYTES, type HttpServer } from './http-server.js';

const logger = pino({ level: 'silent' });
let fixture: TestBrain;
let http: HttpServer;

beforeAll(async () => {
  fixture = await openTestBrain('brain-rest-', { logger });
  http = await createTestHttpServer(fixture.brain, logger);
});

afterAll(async () => {
  await http?.close();
  await fixture?.close();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
async function call(method: Method, url: string, payload?: Record<string, unknown> | unknown[]) {
  const res = await http.app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
  return { status: res.statusCode, body: res.body ? res.json() : null, headers: res.headers };
}

/** The fields a 400 names. */
function fields(body: { error: { details: { issues?: { field: string }[] } } }): string[] {
  return (body.error.details.issues ?? []).map((i) => i.field);
}

async function total(): Promise<number> {
  return (await call('GET', '/v1/memories?limit=1')).body.total;
}

describe('REST API /v1/memories', () => {
  it('creates, reads, changes, searches and deletes a memory', async () => {
    const created = await call('POST', '/v1/memories', {
      content: 'The deploy window of the billing service is Tuesday 14:00 UTC',
      tags: ['ops'],
      project: 'rest',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'created', id: expect.stringMatching(/^mem_/) });
    const id = created.body.id as string;

    const again = await call('POST', '/v1/memories', {
      content: 'The deploy window of the billing service is Tuesday 14:00 UTC',
      tags: ['ops'],
      project: 'rest',
    });
    expect(again).toMatchObject({ status: 200, body: { id, status: 'duplicate' } });

    const got = await call('GET', `/v1/memories/${id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id, tags: ['ops'], project: 'rest' });

    const changed = await call('PATCH', `/v1/memories/${id}`, { importance: 0.9, tags: ['ops', 'billing'] });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id, importance: 0.9, tags: ['ops', 'billing'] });

    const listed = await call('GET', '/v1/memories?project=rest&tags=ops,billing&limit=5');
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((m: { id: string }) => m.id)).toEqual([id]);

    const found = await call('POST', '/v1/memories/search', { query: 'when is the billing deploy', k: 3 });
    expect(found.status).toBe(200);
    expect(found.body.hits[0]).toMatchObject({ id });

    const deleted = await call('DELETE', `/v1/memories/${id}`);
    expect(deleted).toMatchObject({ status: 200, body: { forgotten: 1 } });
    const gone = await call('GET', `/v1/memories/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('answers bad input with 400 naming the field and its limit, and writes nothing', async () => {
    const before = await total();
    const tooLong = await call('POST', '/v1/memories', { content: 'x'.repeat(70_000) });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.code).toBe('INVALID_INPUT');
    expect(fields(tooLong.body)).toEqual(['content']);
    expect(tooLong.body.error.message).toMatch(/content: must be at most 65536 bytes/);

    const unknown = await call('POST', '/v1/memories', { content: 'fine', colour: 'red' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/colour/);

    const batch = await call('POST', '/v1/memories/batch', {
      memories: [{ content: 'first of a batch' }, { content: '' }],
    });
    expect(batch.status).toBe(400);
    expect(fields(batch.body)).toEqual(['1.content']);

    const badLimit = await call('GET', '/v1/memories?limit=0');
    expect(badLimit.status).toBe(400);
    expect(fields(badLimit.body)).toEqual(['limit']);
    // Negative and fractional numbers are numbers too: the error gives the range, not the type.
    for (const query of ['limit=-1', 'limit=1.5', 'offset=-5']) {
      const bad = await call('GET', `/v1/memories?${query}`);
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).not.toMatch(/must be a number/);
      expect(fields(bad.body)).toEqual([query.split('=')[0]]);
    }

    // A batch is {"memories": [...]} and nothing else.
    const bare = await call('POST', '/v1/memories/batch', [{ content: 'a bare list' }]);
    expect(bare.status).toBe(400);
    expect(fields(bare.body)).toEqual(['body']);
    const extra = await call('POST', '/v1/memories/batch', { memories: [{ content: 'x' }], dedupe: false });
    expect(fields(extra.body)).toEqual(['dedupe']);
    const missing = await call('POST', '/v1/memories/batch', {});
    expect(missing.body.error.message).toMatch(/memories: is required: a list of 1 to 1000 memories/);

    const badId = await call('GET', '/v1/memories/not-an-id');
    expect(badId.status).toBe(400);
    expect(fields(badId.body)).toEqual(['id']);

    const emptyPatch = await call('PATCH', '/v1/memories/mem_00000000000000000000000000', {});
    expect(emptyPatch.status).toBe(400);
    const keyed = await call('PATCH', '/v1/memories/mem_00000000000000000000000000', {
      key: 'k',
      content: 'x',
    });
    expect(keyed.status).toBe(400);
    expect(fields(keyed.body)).toEqual(['key']);
    expect(keyed.body.error.message).toMatch(/the path names the memory/);

    const everything = await call('POST', '/v1/memories/forget', { filter: {} });
    expect(everything.status).toBe(400);
    expect(everything.body.error.message).toMatch(/selects every memory/);

    const notJson = await http.app.inject({
      method: 'POST',
      url: '/v1/memories',
      headers: { 'content-type': 'application/json' },
      payload: '{"content": ',
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error.message).toMatch(/not valid JSON/);
    expect(await total()).toBe(before);
  });

  it('refuses a body over the 1 MiB limit with 413 naming the limit, and writes nothing', async () => {
    const before = await total();
    // Each memory is valid and the count is within the batch's: only the body's size is over.
    const batchOf = (count: number) =>
      JSON.stringify({
        memories: Array.from({ length: count }, (_, i) => ({
          content: `${i} ${'x'.repeat(60_000)}`,
          project: 'limit',
        })),
      });
    const over = batchOf(18);
    expect(Buffer.byteLength(over)).toBeGreaterThan(BODY_LIMIT_BYTES);
    const post = (payload: string | Readable) =>
      http.app.inject({
        method: 'POST',
        url: '/v1/memories/batch',
        headers: { 'content-type': 'application/json' },
        payload,
      });
    // With its Content-Length, and streamed without one (counted as it arrives).
    for (const res of [await post(over), await post(Readable.from([over]))]) {
      expect(res.statusCode).toBe(413);
      expect(res.json()).toEqual({
        error: {
          code: 'INVALID_INPUT',
          message: `request body is larger than ${BODY_LIMIT_BYTES} bytes (1 MiB)`,
          details: { limit_bytes: BODY_LIMIT_BYTES },
        },
      });
    }
    expect(await total()).toBe(before);
    // The same batch a little smaller is stored: the size was the refusal's only reason.
    const under = batchOf(16);
    expect(Buffer.byteLength(under)).toBeLessThan(BODY_LIMIT_BYTES);
    expect((await post(under)).statusCode).toBe(200);
    expect(await total()).toBe(before + 16);
    const forgot = await call('POST', '/v1/memories/forget', { filter: { project: 'limit' } });
    expect(forgot.body).toMatchObject({ forgotten: 16 });
  });

  it('stores a batch all at once and forgets by filter', async () => {
    const batch = await call('POST', '/v1/memories/batch', {
      memories: [
        { content: 'batch one about kayaks', project: 'b' },
        { content: 'batch two about kayaks', project: 'b' },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r: { status: string }) => r.status)).toEqual(['created', 'created']);
    const forgot = await call('POST', '/v1/memories/forget', { filter: { project: 'b' } });
    expect(forgot).toMatchObject({ status: 200, body: { forgotten: 2 } });
  });
});

describe('REST API /v1/sessions and the deployment guide routes', () => {
  it('opens a session with its working context', async () => {
    await call('POST', '/v1/memories', { content: 'The user prefers short answers', type: 'preference' });
    const session = await call('POST', '/v1/sessions', {});
    expect(session.status).toBe(200);
    expect(session.body.session_id).toEqual(expect.any(String));
    expect(JSON.stringify(session.body)).toContain('prefers short answers');
  });

  it('remembers with {content, metadata} and recalls with {query, k}', async () => {
    const kept = await call('POST', '/remember', {
      content: 'The staging database lives on host db-7',
      metadata: { source: 'guide' },
    });
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({ status: 'created' });
    const recalled = await call('POST', '/recall', { query: 'staging database host', k: 1 });
    expect(recalled.status).toBe(200);
    expect(recalled.body.hits).toHaveLength(1);
    expect(recalled.body.hits[0]).toMatchObject({ id: kept.body.id });
    const bad = await call('POST', '/recall', { query: 'x', k: 1000 });
    expect(bad.status).toBe(400);
    expect(fields(bad.body)).toEqual(['k']);
    expect(bad.body.error.message).toMatch(/k: must be from 1 to 100/);
  });
});

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1, lists every route the server serves, and serves only documented routes', async () => {
    const res = await call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const documented = new Set(
      Object.entries(res.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
      ),
    );
    const served = new Set(http.routes.map((r) => `${r.method} ${r.url}`));
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !served.has(r))).toEqual([]);
    expect(served).toContain('POST /v1/memories/search');
    // The request schema is the module's own: its limits appear in the document.
    const remember = res.body.paths['/v1/memories'].post.requestBody.content['application/json'].schema;
    expect(remember.required).toContain('content');
    expect(remember.additionalProperties).toBe(false);
    // Bearer credentials everywhere but the public routes, and the error statuses a caller can meet.
    expect(res.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(res.body.security).toEqual([{ bearer: [] }]);
    expect(res.body.paths['/health/live'].get.security).toEqual([]);
    const responses = Object.keys(res.body.paths['/v1/memories'].post.responses);
    for (const status of ['400', '401', '403', '409', '413', '429', '503'])
      expect(responses).toContain(status);
    // The compatibility routes document every field they take.
    const compat = res.body.paths['/remember'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(compat.properties)).toEqual(expect.arrayContaining(['content', 'metadata', 'tags']));
  });

  it('serves a docs page', async () => {
    const res = await http.app.inject({ method: 'GET', url: '/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
  });
});
