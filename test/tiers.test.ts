/**
 * Tiers and decay through every face: the memory service's recall (cold left out unless include_cold),
 * `brain rebalance` and `brain memory explain`, `POST /admin/rebalance-memory`,
 * `GET /v1/memories/:id/explain`, the scheduled `rebalance` and `decay` jobs, and the utilisation gauge.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Brain } from '../src/app/build-brain.js';
import { createFixedClock } from '../src/core/clock.js';
import { newId } from '../src/core/ids.js';
import { type CliRuntime, EXIT, runCli } from '../src/surfaces/cli/cli-program.js';
import type { HttpServer } from '../src/surfaces/http/http-server.js';
import { openTestBrain, type TestBrain } from './test-brain.js';
import { createTestHttpServer } from './test-http.js';

const logger = pino({ level: 'silent' });
const clock = createFixedClock(new Date());
let fixture: TestBrain;
let brain: Brain;
let server: HttpServer;
const ids: string[] = [];

beforeAll(async () => {
  fixture = await openTestBrain('brain-tiers-', {
    logger,
    clock,
    env: { BRAIN_HOT_MAX: '2', BRAIN_COLD_AFTER_DAYS: '1', BRAIN_EMBEDDER: 'none' },
  });
  brain = fixture.brain;
  server = await createTestHttpServer(brain, logger);
  for (const [content, importance] of [
    ['The lighthouse keeper paints the door blue', 0.9],
    ['The lighthouse lamp is serviced in March', 0.8],
    ['The lighthouse has 112 steps', 0.1],
  ] as const) {
    const r = await brain.services.memory.remember(brain.scope, { content, importance });
    ids.push(r.id);
  }
});

afterAll(async () => {
  await server?.close();
  await fixture?.close();
});

/** `brain …` against this Brain; only the data commands' `open` is used. */
async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const runtime = {
    version: 'test',
    async open() {
      return {
        ctx: { services: brain.services, scope: brain.scope, version: 'test' },
        close: async () => {},
      };
    },
  } as unknown as CliRuntime;
  const code = await runCli(argv, runtime, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('tiers and decay', () => {
  it('POST /admin/rebalance-memory demotes past BRAIN_HOT_MAX; explain shows the score, its parts and the move', async () => {
    const bad = await server.app.inject({
      method: 'POST',
      url: '/admin/rebalance-memory',
      payload: { tenant: 'no spaces here' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/tenant/);

    const lastRun = async () =>
      (await brain.storage.stores().jobs.history()).find((h) => h.job === 'rebalance')?.last ?? null;
    expect(await lastRun()).toBeNull();
    const res = await server.app.inject({ method: 'POST', url: '/admin/rebalance-memory', payload: {} });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ tenants: 1, memories: 3, demoted: 1, hot: 2, hot_max: 2 });
    // A rebalance of every tenant asked for now is the job's last run, as /health shows it.
    expect(await lastRun()).toMatchObject({ trigger: 'manual', outcome: 'succeeded', holder: 'local' });
    expect((await lastRun())?.message).toMatch(/1 demoted/);
    const health = (await server.app.inject({ method: 'GET', url: '/health' })).json() as {
      jobs: { name: string; last_run: { outcome: string; holder: string } | null }[];
    };
    expect(health.jobs.find((j) => j.name === 'rebalance')?.last_run).toMatchObject({
      outcome: 'succeeded',
      holder: 'local',
    });

    const explained = await server.app.inject({ method: 'GET', url: `/v1/memories/${ids[2]}/explain` });
    expect(explained.statusCode).toBe(200);
    const body = explained.json();
    expect(body).toMatchObject({ id: ids[2], tier: 'warm', protected: false });
    expect(body.parts.importance).toBeCloseTo(0.1, 9);
    expect(body.moves).toHaveLength(1);
    expect(body.moves[0]).toMatchObject({ from: 'hot', to: 'warm' });
    const missing = await server.app.inject({
      method: 'GET',
      url: `/v1/memories/${newId('mem', Date.now())}/explain`,
    });
    expect(missing.statusCode).toBe(404);

    const metrics = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/brain_memories\{tier="hot"\} 2/);
    expect(metrics).toMatch(/brain_memories\{tier="warm"\} 1/);
    expect(metrics).toMatch(/brain_hot_tier_utilization_ratio 1/);
    expect(metrics).toMatch(/brain_hot_tier_fullest_ratio 1/);
  });

  it('brain rebalance and brain memory explain print what they did and why', async () => {
    const again = await cli(['rebalance', '--json']);
    expect(again.code).toBe(EXIT.ok);
    // Nothing changed since the last rebalance: nothing moves (idempotent).
    expect(JSON.parse(again.out)).toMatchObject({ promoted: 0, demoted: 0, cooled: 0 });
    // One tenant's rebalance, asked for now, is not a run of the job (of every tenant).
    const last = async () =>
      (await brain.storage.stores().jobs.history()).find((h) => h.job === 'rebalance')?.last?.finishedAt;
    const before = await last();
    const one = await server.app.inject({
      method: 'POST',
      url: '/admin/rebalance-memory',
      payload: { tenant: 'other' },
    });
    expect(one.statusCode).toBe(200);
    expect(await last()).toBe(before);

    const human = await cli(['memory', 'explain', ids[2] as string]);
    expect(human.code).toBe(EXIT.ok);
    expect(human.out).toMatch(/tier warm/);
    expect(human.out).toMatch(/hot → warm/);
    expect(human.out).toMatch(/BRAIN_HOT_MAX 2/);

    const other = await cli(['memory', 'explain', ids[2] as string, '--tenant', 'other']);
    expect(other.code).not.toBe(EXIT.ok);
    expect(other.err).toMatch(/not found/i);
    const bad = await cli(['rebalance', '--tenant', 'a b']);
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.err).toMatch(/tenant: must be 1 to 64 characters/);
  });

  it('the rebalance job sends a memory unused BRAIN_COLD_AFTER_DAYS cold; recall finds it only with include_cold', async () => {
    const recall = async (include_cold: boolean) =>
      (await brain.services.memory.recall(brain.scope, { query: 'lighthouse steps', include_cold })).hits.map(
        (h) => h.id,
      );
    expect(await recall(false)).toContain(ids[2]);
    // Two days on, it has gone unused past BRAIN_COLD_AFTER_DAYS (1). The recall above used the others.
    clock.advance(2 * 86_400_000);
    const run = await brain.scheduler.runNow('rebalance');
    expect(run.outcome).toBe('succeeded');
    expect(run.message).toMatch(/1 to cold/);
    expect(await recall(false)).not.toContain(ids[2]);
    expect(await recall(true)).toContain(ids[2]);
    // Listing too leaves cold memories out unless asked, over REST as through the service.
    const listed = async (query: string) => {
      const res = await server.app.inject({ method: 'GET', url: `/v1/memories?limit=100${query}` });
      expect(res.statusCode).toBe(200);
      return (res.json() as { items: { id: string; storage_tier: string }[] }).items;
    };
    expect((await listed('')).map((m) => m.id)).not.toContain(ids[2]);
    expect((await listed('&include_cold=true')).find((m) => m.id === ids[2])?.storage_tier).toBe('cold');
    expect((await listed('&include_cold=false')).map((m) => m.id)).not.toContain(ids[2]);
    const bad = await server.app.inject({ method: 'GET', url: '/v1/memories?include_cold=maybe' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.issues[0].field).toBe('include_cold');
    const decay = await brain.scheduler.runNow('decay');
    expect(decay.outcome).toBe('succeeded');
    expect(decay.message).toMatch(/re-scored/);
  });
});
