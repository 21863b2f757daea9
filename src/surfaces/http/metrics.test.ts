import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer } from '../../../test/test-http.js';
import type { HttpServer } from './http-server.js';

const logger = pino({ level: 'silent' });
let fixture: TestBrain;
let http: HttpServer;
let url: string;

beforeAll(async () => {
  fixture = await openTestBrain('brain-metrics-', { logger });
  http = await createTestHttpServer(fixture.brain, logger);
  url = (await http.listen()).url;
});

afterAll(async () => {
  await http?.close();
  await fixture?.close();
});

/** The scrape, parsed (it must parse as the text format), and its raw text. */
async function scrape() {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { families: new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])), text };
}

/** A sample's value from the raw text (the parser keeps no labels of histogram samples). */
function sample(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

describe('GET /metrics', () => {
  it('serves the execution queue, each worker, and the runs with their duration and outcome', async () => {
    expect(fixture.brain.startExecutionWorkers()).toBe(true);
    const res = await fetch(`${url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: 'print(1)' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'succeeded', stdout: '1\n' });
    const failed = await fetch(`${url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: 'raise SystemExit(2)' }),
    });
    expect(((await failed.json()) as { status: string }).status).toBe('failed');
    const { families, text } = await scrape();
    expect(Number(families.get('brain_execution_queue_size')?.metrics[0]?.value)).toBe(0);
    const rows = families.get('brain_executions')?.metrics ?? [];
    const rowsOf = (status: string) => Number(rows.find((m) => m.labels?.status === status)?.value);
    expect(rowsOf('succeeded')).toBe(1);
    expect(rowsOf('failed')).toBe(1);
    expect(rowsOf('running')).toBe(0);
    const workers = families.get('brain_worker_status')?.metrics ?? [];
    expect(workers.map((w) => w.labels?.worker_id).sort()).toEqual(
      fixture.brain.executions
        .status()
        .map((w) => w.id)
        .sort(),
    );
    expect(workers.every((w) => Number(w.value) === 0)).toBe(true);
    expect(sample(text, 'brain_executions_total{status="succeeded"}')).toBe(1);
    expect(sample(text, 'brain_executions_total{status="failed"}')).toBe(1);
    expect(sample(text, 'brain_execution_duration_seconds_count{status="succeeded"}')).toBe(1);
    const health = (await (await fetch(`${url}/health`)).json()) as {
      checks: { execution: { status: string; message: string } };
      workers: { id: string }[];
    };
    expect(health.checks.execution).toMatchObject({ status: 'ok' });
    expect(health.checks.execution.message).toMatch(/0 queued, 0 running; \d+ workers/);
    expect(health.workers.map((w: { id: string }) => w.id).sort()).toEqual(
      fixture.brain.executions
        .status()
        .map((w) => w.id)
        .sort(),
    );
    await fixture.brain.executions.stop();
  });

  it('serves the named series in the Prometheus text format, counting what was done', async () => {
    const post = (path: string, body: object) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/v1/memories', { content: 'The metrics test wrote this' })).status).toBe(201);
    expect((await post('/v1/memories/search', { query: 'metrics test' })).status).toBe(200);
    expect((await post('/v1/memories', { content: '' })).status).toBe(400);
    const client = new Client({ name: 'metrics-test', version: '0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
    await client.callTool({ name: 'recall', arguments: { query: 'metrics' } });
    await client.callTool({ name: 'get_memory', arguments: { id: `mem_${'0'.repeat(26)}` } });

    const { families, text } = await scrape();
    for (const name of [
      'brain_mcp_request_duration_seconds',
      'brain_memory_operations_total',
      'brain_database_size_bytes',
      'brain_active_sessions',
      'brain_http_request_duration_seconds',
      'brain_http_requests_total',
      'process_cpu_user_seconds_total',
      'nodejs_heap_size_used_bytes',
    ])
      expect(families.has(name), name).toBe(true);

    const ops = families.get('brain_memory_operations_total')?.metrics ?? [];
    const opCount = (operation: string) =>
      Number(ops.find((m) => m.labels?.operation === operation && m.labels?.tier === 'hot')?.value ?? 0);
    expect(opCount('remember')).toBe(1); // the 400 is not an operation
    expect(opCount('recall')).toBe(2); // one over REST, one over MCP

    const tool = (name: string, status: string) =>
      sample(text, `brain_mcp_request_duration_seconds_count{tool="${name}",status="${status}"}`);
    expect(tool('recall', 'ok')).toBe(1);
    expect(tool('get_memory', 'error')).toBe(1); // not found
    // Buckets below 10 ms, and the deployment guide's.
    for (const le of ['0.001', '0.005', '0.01', '0.05', '0.1', '0.5', '1'])
      expect(text).toContain(
        `brain_mcp_request_duration_seconds_bucket{le="${le}",tool="recall",status="ok"}`,
      );

    const requests = families.get('brain_http_requests_total')?.metrics ?? [];
    const routeCount = (route: string, status: string) =>
      Number(requests.find((m) => m.labels?.route === route && m.labels?.status === status)?.value ?? 0);
    expect(routeCount('/v1/memories', '201')).toBe(1);
    expect(routeCount('/v1/memories', '400')).toBe(1);
    expect(Number(families.get('brain_database_size_bytes')?.metrics[0]?.value)).toBeGreaterThan(0);
    expect(Number(families.get('brain_embedding_queue_size')?.metrics[0]?.value)).toBeGreaterThanOrEqual(0);
    await client.close();
  });

  it("counts recall's cache hits and misses, for answers and query vectors, and its bytes", async () => {
    const cache = (text: string, kind: string, result: string) =>
      sample(text, `brain_recall_cache_total{cache="${kind}",result="${result}"}`);
    const before = (await scrape()).text;
    const search = () =>
      fetch(`${url}/v1/memories/search`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'a question asked twice for the cache' }),
      });
    expect((await search()).status).toBe(200);
    expect((await search()).status).toBe(200);
    const { text } = await scrape();
    expect(cache(text, 'results', 'miss') - cache(before, 'results', 'miss')).toBe(1);
    expect(cache(text, 'results', 'hit') - cache(before, 'results', 'hit')).toBe(1);
    expect(cache(text, 'query_vectors', 'miss') - cache(before, 'query_vectors', 'miss')).toBe(1);
    expect(text).toContain('brain_recall_cache_total{cache="query_vectors",result="hit"}');
    expect(sample(text, 'brain_recall_cache_bytes')).toBeGreaterThan(0);
  });

  it('counts memories written by outcome: created, updated by key, and each kind of merge', async () => {
    const writes = (text: string, outcome: string) =>
      sample(text, `brain_memory_writes_total{outcome="${outcome}"}`);
    const before = (await scrape()).text;
    const remember = (body: Record<string, unknown>) =>
      fetch(`${url}/v1/memories`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    for (const body of [
      { content: 'The metrics bench runs every Tuesday at noon.' },
      { content: 'the metrics bench runs every tuesday at noon.' },
      { content: 'Every Tuesday at noon the metrics bench runs' },
      { content: 'The metrics owner is Dana', key: 'metrics-owner' },
      { content: 'The metrics owner is Eli', key: 'metrics-owner' },
    ])
      expect((await remember(body)).status).toBeLessThan(300);
    const { text } = await scrape();
    const delta = (outcome: string) => writes(text, outcome) - writes(before, outcome);
    expect([delta('created'), delta('exact'), delta('reworded'), delta('updated'), delta('similar')]).toEqual(
      [2, 1, 1, 1, 0],
    );
  });

  it("serves the jobs' last runs and the dead letters from the store", async () => {
    const run = await fixture.brain.scheduler.runNow('expire');
    const { families, text } = await scrape();
    expect(sample(text, 'brain_job_last_success_timestamp_seconds{job="expire"}')).toBe(
      Date.parse(run.finishedAt) / 1000,
    );
    expect(sample(text, 'brain_job_last_run_failed{job="expire"}')).toBe(0);
    expect(text).toContain('brain_job_last_duration_seconds{job="expire"}');
    expect(Number(families.get('brain_dead_letter_jobs')?.metrics[0]?.value)).toBe(0);
  });

  it('serves the age of the last good backup: +Inf before the first, then seconds', async () => {
    expect((await scrape()).text).toMatch(/^brain_backup_age_seconds \+Inf$/m);
    expect((await fixture.brain.scheduler.runNow('backup')).outcome).toBe('succeeded');
    const age = sample((await scrape()).text, 'brain_backup_age_seconds');
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(120);
  });
});

describe('brain_memory_operations_total by tier', () => {
  let tiered: TestBrain;
  let server: HttpServer;
  let base: string;

  beforeAll(async () => {
    // One hot place: a rebalance sends the less important of two memories to warm.
    tiered = await openTestBrain('brain-metrics-tiers-', {
      logger,
      env: { BRAIN_HOT_MAX: '1', BRAIN_EMBEDDER: 'none' },
    });
    server = await createTestHttpServer(tiered.brain, logger);
    base = (await server.listen()).url;
  });

  afterAll(async () => {
    await server?.close();
    await tiered?.close();
  });

  const call = async (method: string, path: string, body?: object) => {
    const res = await fetch(`${base}${path}`, {
      method,
      ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** Each (operation, tier) series of the counter, read from a parsed scrape. */
  const counts = async () => {
    const res = await fetch(`${base}/metrics`);
    const family = parsePrometheusTextFormat(await res.text()).find(
      (f) => f.name === 'brain_memory_operations_total',
    );
    const series = new Map<string, number>();
    for (const m of family?.metrics ?? [])
      series.set(`${m.labels?.operation}/${m.labels?.tier}`, Number(m.value));
    return series;
  };

  it('counts an operation under the tier of the memory it touched, warm after a rebalance', async () => {
    const kept = await call('POST', '/v1/memories', {
      content: 'The harbour crane lifts forty tonnes',
      importance: 0.9,
    });
    const moved = await call('POST', '/v1/memories', {
      content: 'The quayside bakery opens at dawn',
      importance: 0.1,
    });
    expect([kept.status, moved.status]).toEqual([201, 201]);
    const rebalanced = await call('POST', '/admin/rebalance-memory', {});
    expect(rebalanced.body).toMatchObject({ demoted: 1, hot: 1 });
    const before = await counts();
    expect(before.get('remember/hot')).toBe(2); // new memories enter hot

    expect((await call('GET', `/v1/memories/${moved.body.id}`)).body).toMatchObject({ storage_tier: 'warm' });
    expect((await call('GET', `/v1/memories/${kept.body.id}`)).body).toMatchObject({ storage_tier: 'hot' });
    // Twice: the second answer comes from recall's cache, with the tier it was kept with.
    for (let i = 0; i < 2; i++) {
      const found = await call('POST', '/v1/memories/search', { query: 'quayside bakery' });
      expect((found.body.hits as { id: string }[]).map((h) => h.id)).toEqual([moved.body.id]);
    }
    expect(((await call('POST', '/v1/memories/search', { query: 'zeppelin' })).body.hits as []).length).toBe(
      0,
    );
    const client = new Client({ name: 'metrics-tier-test', version: '0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
    const updated = await client.callTool({
      name: 'update_memory',
      arguments: { id: moved.body.id, importance: 0.2 },
    });
    expect(updated.isError).toBeFalsy();
    await client.close();
    expect((await call('DELETE', `/v1/memories/${moved.body.id}`)).body).toMatchObject({ forgotten: 1 });
    expect((await call('GET', `/v1/memories/${moved.body.id}`)).status).toBe(404); // a failure counts nowhere
    expect((await call('POST', '/v1/memories/forget', { filter: { tags: ['none-such'] } })).status).toBe(200);
    expect((await call('POST', '/v1/memories/forget', { all: true })).body).toMatchObject({ forgotten: 1 });

    const after = await counts();
    const grew = (series: string) => (after.get(series) ?? 0) - (before.get(series) ?? 0);
    expect(grew('get/warm')).toBe(1);
    expect(grew('get/hot')).toBe(1);
    expect(grew('get/none')).toBe(0);
    expect(grew('recall/warm')).toBe(2);
    expect(grew('recall/hot')).toBe(0);
    expect(grew('recall/none')).toBe(1);
    expect(grew('update/warm')).toBe(1);
    expect(grew('update/hot')).toBe(0);
    expect(grew('forget/warm')).toBe(1);
    expect(grew('forget/none')).toBe(1); // the filter matched nothing
    expect(grew('forget/all')).toBe(1);
  });
});
