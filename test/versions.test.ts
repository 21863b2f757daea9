/**
 * Versions and time on either engine (BRAIN_TEST_ENGINE): a write with the same key supersedes the old
 * statement and keeps it as a version, every update writes one, recall leaves out superseded and
 * no-longer-valid facts and with `as_of` answers as the store stood then, and the history is readable
 * through the service, `GET /v1/memories/:id/history` and the `memory_history` MCP tool. Fixed clock.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Brain } from '../src/app/build-brain.js';
import { createFixedClock } from '../src/core/clock.js';
import type { HistoryResult } from '../src/modules/memory/memory-types.js';
import type { HttpServer } from '../src/surfaces/http/http-server.js';
import { createMcpServer } from '../src/surfaces/mcp/mcp-server.js';
import { openTestBrain, type TestBrain } from './test-brain.js';
import { createTestHttpServer } from './test-http.js';

const logger = pino({ level: 'silent' });
const T0 = '2026-03-01T09:00:00.000Z';
const DAY = 86_400_000;
const at = (days: number) => new Date(Date.parse(T0) + days * DAY).toISOString();
const clock = createFixedClock(T0);
let fixture: TestBrain;
let brain: Brain;
let server: HttpServer;

beforeAll(async () => {
  fixture = await openTestBrain('brain-versions-', { logger, clock, env: { BRAIN_EMBEDDER: 'none' } });
  brain = fixture.brain;
  server = await createTestHttpServer(brain, logger);
});

afterAll(async () => {
  await server?.close();
  await fixture?.close();
});

async function recallContents(query: string, extra: Record<string, unknown> = {}): Promise<string[]> {
  const r = await brain.services.memory.recall(brain.scope, { query, ...extra });
  return r.hits.map((h) => h.content);
}

describe('versions and time', () => {
  it('a write with the same key supersedes the old statement; as_of answers as the store stood then', async () => {
    clock.set(new Date(T0));
    const first = await brain.services.memory.remember(brain.scope, {
      key: 'alice-home',
      content: 'Alice lives in Paris near the canal',
    });
    clock.set(new Date(at(10)));
    const second = await brain.services.memory.remember(brain.scope, {
      key: 'alice-home',
      content: 'Alice lives in Berlin near the canal',
    });
    expect(second).toMatchObject({ id: first.id, status: 'updated' });
    clock.set(new Date(at(20)));

    expect(await recallContents('where does Alice live canal')).toEqual([
      'Alice lives in Berlin near the canal',
    ]);
    expect(await recallContents('where does Alice live canal', { as_of: at(5) })).toEqual([
      'Alice lives in Paris near the canal',
    ]);
    expect(await recallContents('where does Alice live canal', { as_of: at(15) })).toEqual([
      'Alice lives in Berlin near the canal',
    ]);
    // Words only the old statement holds: found through its version, for the time it held.
    expect(await recallContents('Paris')).toEqual([]);
    expect(await recallContents('Paris', { as_of: at(5) })).toEqual(['Alice lives in Paris near the canal']);
    expect(await recallContents('Paris', { as_of: at(15) })).toEqual([]);
    expect(await recallContents('Paris', { as_of: at(5), types: ['event'] })).toEqual([]);
    // Before the memory existed, the store knew nothing of it.
    expect(await recallContents('where does Alice live canal', { as_of: at(-1) })).toEqual([]);

    const history = await brain.services.memory.history(brain.scope, { id: first.id });
    expect(history.versions).toEqual([
      expect.objectContaining({
        version: 1,
        content: 'Alice lives in Paris near the canal',
        recorded_from: T0,
        recorded_to: at(10),
        change: 'superseded',
      }),
      expect.objectContaining({
        version: 2,
        content: 'Alice lives in Berlin near the canal',
        recorded_from: at(10),
        recorded_to: null,
        change: null,
      }),
    ]);

    // The same statement again under the key is no new version.
    await brain.services.memory.remember(brain.scope, {
      key: 'alice-home',
      content: 'Alice lives in Berlin near the canal',
    });
    expect((await brain.services.memory.history(brain.scope, { id: first.id })).versions).toHaveLength(2);

    // The same content with other attributes is a new statement: its version keeps what they were.
    clock.set(new Date(at(25)));
    await brain.services.memory.remember(brain.scope, {
      key: 'alice-home',
      content: 'Alice lives in Berlin near the canal',
      tags: ['home'],
      importance: 0.9,
    });
    const retagged = (await brain.services.memory.history(brain.scope, { id: first.id })).versions;
    expect(retagged).toHaveLength(3);
    expect(retagged[1]).toMatchObject({ tags: [], recorded_to: at(25), change: 'superseded' });
    expect(retagged[2]).toMatchObject({ tags: ['home'], importance: 0.9, recorded_from: at(25) });
    // Repeated with nothing new (tags and importance given alike, or left to be kept): no version.
    await brain.services.memory.remember(brain.scope, {
      key: 'alice-home',
      content: 'Alice lives in Berlin near the canal',
      tags: ['home'],
      importance: 0.9,
    });
    await brain.services.memory.remember(brain.scope, {
      key: 'alice-home',
      content: 'Alice lives in Berlin near the canal',
    });
    expect((await brain.services.memory.history(brain.scope, { id: first.id })).versions).toHaveLength(3);
    // Metadata is a value, not a text: the same keys in another order are the same statement.
    const write = (metadata: Record<string, unknown>) =>
      brain.services.memory.remember(brain.scope, {
        key: 'alice-home',
        content: 'Alice lives in Berlin near the canal',
        tags: ['home'],
        importance: 0.9,
        metadata,
      });
    await write({ street: 'Kanalstr.', floor: 2, flat: { side: 'left', no: 3 } });
    expect((await brain.services.memory.history(brain.scope, { id: first.id })).versions).toHaveLength(4);
    await write({ flat: { no: 3, side: 'left' }, floor: 2, street: 'Kanalstr.' });
    expect((await brain.services.memory.history(brain.scope, { id: first.id })).versions).toHaveLength(4);
    await write({ flat: { no: 4, side: 'left' }, floor: 2, street: 'Kanalstr.' });
    expect((await brain.services.memory.history(brain.scope, { id: first.id })).versions).toHaveLength(5);
  });

  it('every update writes a version row', async () => {
    clock.set(new Date(at(30)));
    const { id } = await brain.services.memory.remember(brain.scope, {
      content: 'The boiler is serviced every May',
      importance: 0.4,
    });
    clock.set(new Date(at(31)));
    await brain.services.memory.update(brain.scope, { id, importance: 0.9 });
    clock.set(new Date(at(32)));
    await brain.services.memory.update(brain.scope, { id, content: 'The boiler is serviced every June' });
    const history = await brain.services.memory.history(brain.scope, { id });
    expect(history.versions.map((v) => [v.version, v.content, v.importance, v.change])).toEqual([
      [1, 'The boiler is serviced every May', 0.4, 'updated'],
      [2, 'The boiler is serviced every May', 0.9, 'updated'],
      [3, 'The boiler is serviced every June', 0.9, null],
    ]);
    expect(history.versions.map((v) => v.recorded_from)).toEqual([at(30), at(31), at(32)]);
    expect(await recallContents('boiler serviced', { as_of: at(31.5) })).toEqual([
      'The boiler is serviced every May',
    ]);
  });

  it('concurrent updates of one memory each keep their own version, none lost or numbered twice', async () => {
    clock.set(new Date(at(35)));
    const { id } = await brain.services.memory.remember(brain.scope, {
      content: 'The kiln runs at 900 degrees',
    });
    await Promise.all(
      [0.1, 0.2, 0.3, 0.4, 0.5, 0.6].map((importance) =>
        brain.services.memory.update(brain.scope, { id, importance }),
      ),
    );
    const { versions } = await brain.services.memory.history(brain.scope, { id });
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // The first version is the state before any update; each later one a distinct update's result.
    expect(versions[0]?.importance).toBe(0.5);
    expect(new Set(versions.slice(1).map((v) => v.importance)).size).toBe(6);
  });

  it('recall leaves out facts no longer (or not yet) valid, unless as_of falls inside their validity', async () => {
    clock.set(new Date(at(40)));
    const ended = await brain.services.memory.remember(brain.scope, {
      content: 'Bob works at the harbour office',
      valid_from: at(0),
      valid_to: at(35),
    });
    await brain.services.memory.remember(brain.scope, {
      content: 'Bob works at the harbour museum from next year',
      valid_from: at(400),
    });
    const memory = await brain.services.memory.get(brain.scope, { id: ended.id });
    expect(memory).toMatchObject({ valid_from: at(0), valid_to: at(35) });
    expect(await recallContents('Bob harbour works')).toEqual([]);
    // as_of asks what the store held then: created at day 40, the memory was not in it at day 20.
    expect(await recallContents('Bob harbour works', { as_of: at(20) })).toEqual([]);
    clock.set(new Date(at(41)));
    await brain.services.memory.update(brain.scope, { id: ended.id, valid_to: null });
    expect(await recallContents('Bob harbour office')).toEqual(['Bob works at the harbour office']);
    // init leaves out a fact not valid yet, as recall does.
    const context = await brain.services.sessions.init(brain.scope, {});
    expect([...context.important, ...context.recent].map((m) => m.content)).not.toContain(
      'Bob works at the harbour museum from next year',
    );
    // At day 40.5 the store held the fact with its old validity, which had ended by then.
    expect(await recallContents('Bob harbour office', { as_of: at(40.5) })).toEqual([]);
  });

  it('as_of finds a memory forgotten since as it read then; a hard forget leaves it in no answer', async () => {
    clock.set(new Date(at(70)));
    const memory = brain.services.memory;
    const wheel = await memory.remember(brain.scope, { content: 'The Ferris wheel is closed for repairs' });
    const boat = await memory.remember(brain.scope, {
      content: 'The Ferris wheel boat rental desk is on pier 3',
    });
    clock.set(new Date(at(71)));
    await memory.update(brain.scope, {
      id: wheel.id,
      content: 'The Ferris wheel reopened after its repairs',
    });
    clock.set(new Date(at(72)));
    await memory.forget(brain.scope, { id: wheel.id });
    await memory.forget(brain.scope, { id: boat.id, hard: true });
    expect(await recallContents('Ferris wheel')).toEqual([]);
    // At day 70.5 the store held the first statement, at 71.5 the second; at 72.5 it was forgotten.
    expect(await recallContents('Ferris wheel', { as_of: at(70.5) })).toEqual([
      'The Ferris wheel is closed for repairs',
    ]);
    expect(await recallContents('Ferris wheel reopened', { as_of: at(71.5) })).toEqual([
      'The Ferris wheel reopened after its repairs',
    ]);
    expect(await recallContents('Ferris wheel', { as_of: at(72.5) })).toEqual([]);
    // Filters apply to the statement as it was then.
    expect(await recallContents('Ferris wheel', { as_of: at(70.5), types: ['event'] })).toEqual([]);
  });

  it('the ttl job purges memories whose expires_at has passed, and only those', async () => {
    clock.set(new Date(at(60)));
    const short = await brain.services.memory.remember(brain.scope, {
      content: 'The parking permit number is 4411',
      ttl_seconds: 3600,
    });
    const long = await brain.services.memory.remember(brain.scope, {
      content: 'The parking garage closes at midnight',
      ttl_seconds: 30 * 86_400,
    });
    const usage = () => brain.storage.stores().memories.usage(brain.scope);
    const before = await usage();
    clock.set(new Date(at(61)));
    // Expired, not purged yet: out of recall, but as_of before its expiry still finds it.
    expect(await recallContents('permit number')).toEqual([]);
    expect(await recallContents('permit number', { as_of: at(60.01) })).toEqual([
      'The parking permit number is 4411',
    ]);
    const run = await brain.scheduler.runNow('ttl');
    expect(run).toMatchObject({ outcome: 'succeeded' });
    expect(run.message).toMatch(/^1 expired memories of 1 tenants purged/);
    // Gone for good: not even a hard forget by id finds it, and its content is not in the store.
    await expect(brain.services.memory.forget(brain.scope, { id: short.id, hard: true })).rejects.toThrow(
      /not found/i,
    );
    expect((await brain.services.memory.get(brain.scope, { id: long.id })).content).toBe(
      'The parking garage closes at midnight',
    );
    // Purged, it is in no answer of any time.
    expect(await recallContents('permit number', { as_of: at(60.01) })).toEqual([]);
    // Its room is given back: quotas count what the store holds.
    expect((await usage()).memories).toBe(before.memories - 1);
    const again = await brain.scheduler.runNow('ttl');
    expect(again).toMatchObject({ outcome: 'skipped' });
  });

  it('supersedes closes the old fact, links it and keeps its statement; as_of answers either side of it', async () => {
    clock.set(new Date(at(80)));
    const memory = brain.services.memory;
    const bakery = await memory.remember(brain.scope, { content: 'Dana works at the bakery on Elm street' });
    clock.set(new Date(at(81)));
    const library = await memory.remember(brain.scope, {
      content: 'Dana works at the library now',
      supersedes: bakery.id,
    });
    expect(library.status).toBe('created');
    expect(await memory.get(brain.scope, { id: bakery.id })).toMatchObject({
      superseded_by: library.id,
      valid_to: at(81),
    });
    expect((await memory.get(brain.scope, { id: library.id })).superseded_by).toBeNull();
    clock.set(new Date(at(82)));
    expect(await recallContents('Dana')).toEqual(['Dana works at the library now']);
    expect(await recallContents('Dana bakery', { as_of: at(80.5) })).toEqual([
      'Dana works at the bakery on Elm street',
    ]);
    expect(await recallContents('Dana', { as_of: at(81.5) })).toEqual(['Dana works at the library now']);
    // init's working context holds only what is true now: the library, not the bakery.
    const context = await brain.services.sessions.init(brain.scope, {});
    const shown = [...context.important, ...context.recent].map((m) => m.id);
    expect(shown).toContain(library.id);
    expect(shown).not.toContain(bakery.id);
    const history = (await memory.history(brain.scope, { id: bakery.id })).versions;
    expect(history.map((v) => [v.recorded_from, v.recorded_to, v.valid_to, v.change])).toEqual([
      [at(80), at(81), null, 'superseded'],
      [at(81), null, at(81), null],
    ]);

    // A statement that takes over later leaves the old one in recall until then.
    const lunch = await memory.remember(brain.scope, { content: 'Dana has lunch at noon' });
    const moving = await memory.remember(brain.scope, {
      content: 'Dana has lunch at one',
      valid_from: at(90),
      supersedes: lunch.id,
    });
    expect(await recallContents('lunch')).toEqual(['Dana has lunch at noon']);
    clock.set(new Date(at(91)));
    expect(await recallContents('lunch')).toEqual(['Dana has lunch at one']);
    expect((await memory.get(brain.scope, { id: lunch.id })).superseded_by).toBe(moving.id);
    clock.set(new Date(at(82)));

    // Refused, naming the field, writing nothing: superseded already, not live, twice in a batch.
    const before = (await memory.list(brain.scope, { limit: 200 })).total;
    await expect(
      memory.remember(brain.scope, { content: 'Dana works at the museum', supersedes: bakery.id }),
    ).rejects.toThrow(new RegExp(`supersedes: memory ${bakery.id} was superseded by ${library.id} already`));
    await memory.forget(brain.scope, { id: library.id });
    await expect(
      memory.remember(brain.scope, { content: 'Dana works at the museum', supersedes: library.id }),
    ).rejects.toThrow(/supersedes: no live memory/);
    const shop = await memory.remember(brain.scope, { content: 'Dana owns a flower shop' });
    await expect(
      memory.rememberMany(brain.scope, [
        { content: 'Dana sold the flower shop', supersedes: shop.id },
        { content: 'Dana closed the flower shop', supersedes: shop.id },
      ]),
    ).rejects.toThrow(/1\.supersedes: .*superseded twice in one batch/);
    const bad = await server.app.inject({
      method: 'POST',
      url: '/v1/memories',
      payload: { content: 'Dana sold the flower shop', supersedes: 'shop' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/supersedes.*memory id/);
    // The museum writes and the batch wrote nothing: the library forgotten, the shop added.
    expect((await memory.list(brain.scope, { limit: 200 })).total).toBe(before);
    expect((await memory.get(brain.scope, { id: shop.id })).superseded_by).toBeNull();

    // Over REST: the write supersedes, and GET shows the link.
    const sold = await server.app.inject({
      method: 'POST',
      url: '/v1/memories',
      payload: { content: 'Dana sold the flower shop', supersedes: shop.id },
    });
    expect(sold.statusCode).toBe(201);
    const got = await server.app.inject({ method: 'GET', url: `/v1/memories/${shop.id}` });
    expect(got.json().superseded_by).toBe(sold.json().id);
  });

  it('bad times are refused, naming the field, and write nothing', async () => {
    const before = (await brain.services.memory.list(brain.scope, {})).total;
    const backwards = await server.app.inject({
      method: 'POST',
      url: '/v1/memories',
      payload: { content: 'a fact true for no time', valid_from: at(5), valid_to: at(1) },
    });
    expect(backwards.statusCode).toBe(400);
    expect(backwards.json().error.message).toMatch(/valid_to.*after valid_from/);
    const notADate = await server.app.inject({
      method: 'POST',
      url: '/v1/memories/search',
      payload: { query: 'Alice', as_of: 'last tuesday' },
    });
    expect(notADate.statusCode).toBe(400);
    expect(notADate.json().error.message).toMatch(/as_of.*ISO 8601/);
    expect((await brain.services.memory.list(brain.scope, {})).total).toBe(before);
  });

  it('GET /v1/memories/:id/history and the memory_history tool show the versions; a hard forget purges them', async () => {
    clock.set(new Date(at(50)));
    const { id } = await brain.services.memory.remember(brain.scope, {
      key: 'door-code',
      content: 'The door code is 1234',
    });
    clock.set(new Date(at(51)));
    await brain.services.memory.remember(brain.scope, { key: 'door-code', content: 'The door code is 9876' });

    const route = await server.app.inject({ method: 'GET', url: `/v1/memories/${id}/history` });
    expect(route.statusCode).toBe(200);
    const body = route.json() as HistoryResult;
    expect(body).toMatchObject({ id, key: 'door-code' });
    expect(body.versions.map((v) => v.content)).toEqual(['The door code is 1234', 'The door code is 9876']);

    const mcp = createMcpServer({ services: brain.services, scope: brain.scope, version: brain.version });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    await mcp.connect(serverTransport);
    const client = new Client({ name: 'versions-test', version: '0.0.0' });
    await client.connect(clientTransport);
    const tool = await client.callTool({ name: 'memory_history', arguments: { id } });
    expect(tool.isError).toBeFalsy();
    expect((tool.structuredContent as HistoryResult).versions).toHaveLength(2);
    // remember's supersedes through MCP: the link is made, and a bad id is refused naming the field.
    const gate = await brain.services.memory.remember(brain.scope, { content: 'The gate opens at 7' });
    const later = await client.callTool({
      name: 'remember',
      arguments: { content: 'The gate opens at 8 now', supersedes: gate.id },
    });
    expect(later.isError).toBeFalsy();
    const laterId = (later.structuredContent as { id: string }).id;
    expect((await brain.services.memory.get(brain.scope, { id: gate.id })).superseded_by).toBe(laterId);
    const wrong = await client.callTool({
      name: 'remember',
      arguments: { content: 'The gate opens at 9', supersedes: 'gate' },
    });
    expect(wrong.isError).toBe(true);
    expect(JSON.stringify(wrong.content)).toMatch(/supersedes.*memory id/);
    await client.close();

    const unknown = await server.app.inject({
      method: 'GET',
      url: `/v1/memories/mem_${'0'.repeat(26)}/history`,
    });
    expect(unknown.statusCode).toBe(404);

    await brain.services.memory.forget(brain.scope, { id, hard: true });
    const gone = await server.app.inject({ method: 'GET', url: `/v1/memories/${id}/history` });
    expect(gone.statusCode).toBe(404);
    // Nothing of the old code survives in the version rows either.
    const states = await brain.storage.stores().memories.versionsAt(brain.scope, [id], at(50.5));
    expect(states.size).toBe(0);
  });
});
