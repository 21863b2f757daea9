/**
 * The episodic buffer through the services, REST and the store, on BRAIN_TEST_ENGINE (SQLite by default,
 * PostgreSQL under scripts/test-postgres.mjs): the ring buffer's bound and eviction order, each
 * consolidation rule on eviction and at session end, the links both ways, idempotency under repeated
 * and concurrent calls, persistence across a restart, recall blending with temporal decay, bad input,
 * and tenants kept apart.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Brain } from '../src/app/build-brain.js';
import { createFixedClock } from '../src/core/clock.js';
import type { RequestScope } from '../src/core/scope.js';
import { contentDigest } from '../src/modules/episodes/consolidation-rules.js';
import type { HttpServer } from '../src/surfaces/http/http-server.js';
import { openTestBrain, type TestBrain } from './test-brain.js';
import { createTestHttpServer } from './test-http.js';

const logger = pino({ level: 'silent' });
const START = new Date('2026-06-01T12:00:00.000Z');
const clock = createFixedClock(START);
const HOUR = 3_600_000;
let fixture: TestBrain;
let brain: Brain;
let server: HttpServer;
let scope: RequestScope;

beforeAll(async () => {
  fixture = await openTestBrain('brain-episodes-', {
    logger,
    clock,
    env: { BRAIN_EPISODE_BUFFER_SIZE: '3', BRAIN_EMBEDDER: 'none' },
  });
  brain = fixture.brain;
  scope = brain.scope;
  server = await createTestHttpServer(brain, logger);
});

afterAll(async () => {
  await server?.close();
  await fixture?.close();
});

async function newSession(s: RequestScope = scope, project?: string): Promise<string> {
  return (await brain.services.sessions.init(s, project ? { project } : {})).session_id;
}

function record(session_id: string, content: string, extra: Record<string, unknown> = {}, s = scope) {
  return brain.services.episodes.record(s, { session_id, role: 'user', content, ...extra });
}

/** Memories consolidated from a session's episodes. */
async function episodeMemories(session: string, s: RequestScope = scope) {
  return (await brain.services.memory.list(s, { session, tags: ['episode'], limit: 200 })).items;
}

async function fillers(session: string, n: number, from = 0) {
  for (let i = 0; i < n; i++) await record(session, `filler number ${from + i} about nothing`);
}

describe('the episodic buffer', () => {
  it('holds at most BRAIN_EPISODE_BUFFER_SIZE episodes and evicts the oldest first', async () => {
    const session = await newSession();
    const recorded = [];
    for (let i = 1; i <= 5; i++) recorded.push(await record(session, `step ${i} of the plan`));
    expect(recorded.map((r) => r.episode.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(recorded.map((r) => r.evicted)).toEqual([
      [],
      [],
      [],
      [recorded[0]?.episode.id],
      [recorded[1]?.episode.id],
    ]);
    const listed = await brain.services.episodes.list(scope, { session_id: session });
    expect(listed.buffer_size).toBe(3);
    expect(listed.episodes.map((e) => e.content)).toEqual([
      'step 3 of the plan',
      'step 4 of the plan',
      'step 5 of the plan',
    ]);
    expect(listed.episodes.every((e) => e.state === 'buffered')).toBe(true);
    // Nothing salient: no memory was made.
    expect(await episodeMemories(session)).toEqual([]);
  });

  it('consolidates an evicted episode by each rule, with its type, tags and the links both ways', async () => {
    const project = 'rules';
    const session = await newSession(scope, project);
    const cases = [
      {
        content: 'The release train leaves every second Tuesday',
        importance: 0.8,
        reason: 'importance',
        type: 'fact',
      },
      { content: 'I prefer tabs over spaces', reason: 'preference', type: 'user_preferences' },
      { content: "Let's go with PostgreSQL for the ledger", reason: 'decision', type: 'decision' },
    ];
    for (const c of cases) {
      const first = await record(session, c.content, c.importance ? { importance: c.importance } : {});
      const pushed = first.episode.id;
      await fillers(session, 3, cases.indexOf(c) * 3);
      const memories = await episodeMemories(session);
      const memory = memories.find((m) => m.content === c.content);
      expect(memory, c.reason).toBeDefined();
      expect(memory).toMatchObject({ type: c.type, project, session });
      expect(memory?.tags).toEqual(expect.arrayContaining(['episode', `episode-${c.reason}`]));
      expect(memory?.metadata).toEqual({ episode_ids: [pushed], consolidation_reason: c.reason });
      const linked = await brain.storage.stores().episodes.forMemory(scope, memory?.id ?? '');
      expect(linked.map((e) => [e.id, e.state, e.consolidation_reason])).toEqual([
        [pushed, 'consolidated', c.reason],
      ]);
    }
    // Fillers are not salient: three memories, one per rule.
    expect(await episodeMemories(session)).toHaveLength(3);
  });

  it('consolidates repeated content once, linking every repeat, also the one still buffered', async () => {
    const session = await newSession();
    const a = await record(session, 'The staging database listens on port 5433');
    await record(session, 'unrelated chatter');
    const b = await record(session, 'the staging database listens on port 5433.', { role: 'assistant' });
    const pushing = await record(session, 'more unrelated chatter');
    expect(pushing.evicted).toEqual([a.episode.id]);
    expect(pushing.consolidated).toEqual([
      { memory_id: expect.any(String), reason: 'repetition', episode_ids: [a.episode.id, b.episode.id] },
    ]);
    const memoryId = pushing.consolidated[0]?.memory_id as string;
    const buffered = (await brain.services.episodes.list(scope, { session_id: session })).episodes;
    expect(buffered.find((e) => e.id === b.episode.id)).toMatchObject({
      state: 'buffered',
      memory_id: memoryId,
    });
    // The buffered repeat leaves at the end as consolidated, into the same memory: no second one.
    const ended = await brain.services.episodes.end(scope, { session_id: session });
    expect(ended.consolidated).toEqual([]);
    const linked = await brain.storage.stores().episodes.forMemory(scope, memoryId);
    expect(linked.map((e) => [e.id, e.state])).toEqual([
      [a.episode.id, 'consolidated'],
      [b.episode.id, 'consolidated'],
    ]);
    expect((await episodeMemories(session)).map((m) => m.id)).toEqual([memoryId]);
  });

  it('consolidates content said again in a later session, or already remembered, into the same memory', async () => {
    const project = 'across-sessions';
    const remembered = await brain.services.memory.remember(scope, {
      content: 'We decided to ship on Thursdays',
      project,
    });
    const first = await newSession(scope, project);
    const said = await record(first, 'I prefer short standups');
    await record(first, 'we decided to ship on  Thursdays');
    const one = await brain.services.episodes.end(scope, { session_id: first });
    const second = await newSession(scope, project);
    const again = await record(second, 'i prefer short standups');
    const two = await brain.services.episodes.end(scope, { session_id: second });
    const standups = one.consolidated.find((c) => c.episode_ids.includes(said.episode.id))?.memory_id;
    expect(standups).toBeDefined();
    expect(two.consolidated).toEqual([
      { memory_id: standups, reason: 'preference', episode_ids: [again.episode.id] },
    ]);
    // The decision joined the memory the assistant had written; the preference is one memory.
    expect(one.consolidated.map((c) => c.memory_id)).toContain(remembered.id);
    const memories = (await brain.services.memory.list(scope, { project, limit: 50 })).items;
    expect(memories.map((m) => m.content).sort()).toEqual([
      'I prefer short standups',
      'We decided to ship on Thursdays',
    ]);
    const linked = await brain.storage.stores().episodes.forMemory(scope, standups as string);
    expect(linked.map((e) => e.id)).toEqual([said.episode.id, again.episode.id]);
  });

  it('consolidates the whole buffer when the session ends; ending again changes nothing', async () => {
    const session = await newSession();
    await record(session, 'We decided to freeze the API on Friday');
    await record(session, 'just a remark');
    await record(session, 'Please never deploy on weekends');
    const ended = await brain.services.episodes.end(scope, { session_id: session });
    expect(ended.evicted).toBe(3);
    expect(ended.consolidated.map((c) => c.reason).sort()).toEqual(['decision', 'preference']);
    expect((await brain.services.episodes.list(scope, { session_id: session })).episodes).toEqual([]);
    const again = await brain.services.episodes.end(scope, { session_id: session });
    expect(again).toEqual({ session_id: session, evicted: 0, consolidated: [] });
    expect(await episodeMemories(session)).toHaveLength(2);
    // Audited: each record and end, and the memories consolidation wrote, without the episodes' words.
    await brain.audit.flush();
    const events = await brain.storage
      .stores()
      .audit.list({ tenantId: scope.tenantId, action: 'session.', limit: 200 });
    const ends = events.filter((e) => e.action === 'session.end' && e.target === session);
    expect(ends.map((e) => e.details.memories)).toEqual(
      expect.arrayContaining([ended.consolidated.map((c) => c.memory_id), []]),
    );
    expect(
      events.filter((e) => e.action === 'session.record_episode' && e.details.session === session),
    ).toHaveLength(3);
    expect(JSON.stringify(events)).not.toContain('freeze the API');
  });

  it('never makes two memories for one episode under concurrent ends and records', async () => {
    const session = await newSession();
    await record(session, 'I love strongly typed languages');
    await record(session, 'We agreed to review every migration');
    const ends = await Promise.all(
      [1, 2, 3].map(() => brain.services.episodes.end(scope, { session_id: session })),
    );
    expect(ends.reduce((n, e) => n + e.evicted, 0)).toBe(2);
    expect(await episodeMemories(session)).toHaveLength(2);

    // Concurrent records: every seq once, and the repeated preference one memory.
    const other = await newSession();
    const results = await Promise.all(
      ['I hate flaky tests', 'one', 'I hate flaky tests', 'two', 'three', 'I hate flaky tests', 'four'].map(
        (c) => record(other, c),
      ),
    );
    expect(results.map((r) => r.episode.seq).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await Promise.all([1, 2].map(() => brain.services.episodes.end(scope, { session_id: other })));
    const memories = await episodeMemories(other);
    expect(memories.map((m) => m.content)).toEqual(['I hate flaky tests']);
    const linked = await brain.storage.stores().episodes.forMemory(scope, memories[0]?.id ?? '');
    expect(linked).toHaveLength(3);
  });

  it('agrees across two replicas on one store: distinct seqs, one memory per episode', async () => {
    const env = { BRAIN_EMBEDDER: 'none', BRAIN_EPISODE_BUFFER_SIZE: '2' };
    const one = await openTestBrain('brain-episodes-replicas-', { logger, env });
    const two = await openTestBrain('brain-episodes-replicas-', { logger, env, home: one.home });
    try {
      const s = one.brain.scope;
      const session = (await one.brain.services.sessions.init(s, {})).session_id;
      const contents = ['We decided to shard by tenant', 'noise a', 'Decision: keep UTC', 'noise b'];
      const results = await Promise.all(
        contents.flatMap((content) =>
          [one, two].map((r, i) =>
            r.brain.services.episodes.record(s, {
              session_id: session,
              role: 'user',
              // Noise differs by replica (the same noise twice would be a repetition, and kept).
              content: content.startsWith('noise') ? `${content} from replica ${i}` : content,
            }),
          ),
        ),
      );
      expect(results.map((r) => r.episode.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      await Promise.all([one, two].map((r) => r.brain.services.episodes.end(s, { session_id: session })));
      const kept = await one.brain.services.memory.list(s, { session, tags: ['episode'] });
      expect(kept.items.map((m) => m.content).sort()).toEqual([
        'Decision: keep UTC',
        'We decided to shard by tenant',
      ]);
      for (const m of kept.items)
        expect(await one.brain.storage.stores().episodes.forMemory(s, m.id)).toHaveLength(2);
    } finally {
      await two.brain.close();
      await one.close();
    }
  });

  it('keeps the buffer across closing and reopening the Brain on the same store', async () => {
    const first = await openTestBrain('brain-episodes-restart-', { logger, env: { BRAIN_EMBEDDER: 'none' } });
    const s = first.brain.scope;
    const session = (await first.brain.services.sessions.init(s, {})).session_id;
    for (const c of ['first thought', 'second thought', 'third thought'])
      await first.brain.services.episodes.record(s, { session_id: session, role: 'assistant', content: c });
    await first.brain.close();
    const second = await openTestBrain('brain-episodes-restart-', {
      logger,
      home: first.home,
      env: { BRAIN_EMBEDDER: 'none' },
    });
    try {
      const listed = await second.brain.services.episodes.list(s, { session_id: session });
      expect(listed.episodes.map((e) => [e.seq, e.role, e.content])).toEqual([
        [1, 'assistant', 'first thought'],
        [2, 'assistant', 'second thought'],
        [3, 'assistant', 'third thought'],
      ]);
      const next = await second.brain.services.episodes.record(s, {
        session_id: session,
        role: 'user',
        content: 'fourth thought',
      });
      expect(next.episode.seq).toBe(4);
    } finally {
      await second.close();
    }
  });

  it('blends the session’s matching episodes into recall, newest first by temporal decay', async () => {
    const session = await newSession();
    const at = (hoursAgo: number) => new Date(START.getTime() - hoursAgo * HOUR).toISOString();
    await record(session, 'the lighthouse lamp was checked', { occurred_at: at(2) });
    await record(session, 'the lighthouse lamp was repainted', { occurred_at: at(1) });
    await record(session, 'the lighthouse lamp is lit now', { occurred_at: at(0) });
    const recalled = await brain.services.memory.recall(scope, { query: 'lighthouse lamp', session });
    expect(recalled.episodes?.map((e) => e.content)).toEqual([
      'the lighthouse lamp is lit now',
      'the lighthouse lamp was repainted',
      'the lighthouse lamp was checked',
    ]);
    // Full match each: the score is the decay, halving every BRAIN_EPISODE_HALF_LIFE_MINUTES (60).
    expect(recalled.episodes?.map((e) => e.score)).toEqual([1, 0.5, 0.25].map((x) => expect.closeTo(x, 6)));
    const limited = await brain.services.memory.recall(scope, { query: 'lighthouse', session, k: 1 });
    expect(limited.episodes).toHaveLength(1);
    const none = await brain.services.memory.recall(scope, { query: 'submarine', session });
    expect(none.episodes).toEqual([]);
    // Without a session, recall is as it was: no episodes.
    expect(
      (await brain.services.memory.recall(scope, { query: 'lighthouse lamp' })).episodes,
    ).toBeUndefined();
  });

  it('with in_session, blends the session’s episodes into recall without filtering its hits by session', async () => {
    const session = await newSession();
    const elsewhere = await brain.services.memory.remember(scope, {
      content: 'Eve drives a purple tram on weekdays',
    });
    await record(session, 'we talked about the purple tram route');
    // session filters the hits to that session's memories (none here) …
    const filtered = await brain.services.memory.recall(scope, { query: 'purple tram', session });
    expect(filtered.hits).toEqual([]);
    expect(filtered.episodes?.map((e) => e.content)).toEqual(['we talked about the purple tram route']);
    // … in_session keeps every hit and adds the session's episodes.
    const within = await brain.services.memory.recall(scope, { query: 'purple tram', in_session: session });
    expect(within.hits.map((h) => h.id)).toContain(elsewhere.id);
    expect(within.episodes?.map((e) => e.content)).toEqual(['we talked about the purple tram route']);
    await expect(
      brain.services.memory.recall(scope, { query: 'purple tram', in_session: 'x'.repeat(129) }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT', details: { issues: [{ field: 'in_session' }] } });
  });

  it('refuses bad input naming the field and the limit, and writes nothing', async () => {
    const session = await newSession();
    await record(session, 'the only episode');
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ content: '   ' }, /content: must not be empty/],
      [{ content: 'x'.repeat(16 * 1024 + 1) }, /content: must be at most 16384 bytes/],
      [{ role: 'narrator' }, /role: must be one of user, assistant, system, tool/],
      [{ importance: 2 }, /importance: must be between 0 and 1/],
      [{ occurred_at: 'yesterday' }, /occurred_at: must be an ISO 8601 date-time/],
      [{ extra: 1 }, /unknown field\(s\): extra/],
    ];
    for (const [patch, message] of bad)
      await expect(
        brain.services.episodes.record(scope, { session_id: session, role: 'user', content: 'ok', ...patch }),
      ).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(message) });
    await expect(record('ses_unknown', 'hello')).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/session_id: no session ses_unknown/),
      details: { issues: [{ field: 'session_id', message: 'no such session' }] },
    });
    const listed = await brain.services.episodes.list(scope, { session_id: session });
    expect(listed.episodes.map((e) => e.content)).toEqual(['the only episode']);
  });

  it('deletes episodes with a hard forget: those of a purged memory, and all of a forgotten session', async () => {
    const session = await newSession();
    const contents = [
      'I love the night train',
      'We decided to travel light',
      'a passing remark',
      'another passing remark',
    ];
    const recorded = [];
    for (const c of contents) recorded.push(await record(session, c));
    const memoryId = recorded[3]?.consolidated[0]?.memory_id as string;
    expect(recorded[3]?.consolidated[0]?.episode_ids).toEqual([recorded[0]?.episode.id]);
    const episodes = brain.storage.stores().episodes;
    const stored = async (c: string) => (await episodes.repeats(scope, session, contentDigest(c))).length;
    // By id: only the purged memory's episodes go.
    await brain.services.memory.forget(scope, { id: memoryId, hard: true });
    expect(await episodes.forMemory(scope, memoryId)).toEqual([]);
    expect(await Promise.all(contents.map(stored))).toEqual([0, 1, 1, 1]);
    // The session ends (the decision becomes a memory); a hard forget of the session takes every episode.
    await brain.services.episodes.end(scope, { session_id: session });
    expect(await episodeMemories(session)).toHaveLength(1);
    const other = await newSession();
    await record(other, 'a remark elsewhere');
    await brain.services.memory.forget(scope, { filter: { session }, hard: true });
    expect(await Promise.all(contents.map(stored))).toEqual([0, 0, 0, 0]);
    // Another session's episodes stay.
    expect((await brain.services.episodes.list(scope, { session_id: other })).episodes).toHaveLength(1);
  });

  it('refuses to record or end in maintenance mode, writing nothing', async () => {
    const session = await newSession();
    await record(session, 'I prefer quiet mornings');
    await brain.maintenance.set(true, 'episodes test');
    try {
      await expect(record(session, 'during maintenance')).rejects.toMatchObject({ code: 'MAINTENANCE' });
      await expect(brain.services.episodes.end(scope, { session_id: session })).rejects.toMatchObject({
        code: 'MAINTENANCE',
      });
    } finally {
      await brain.maintenance.set(false);
    }
    const listed = await brain.services.episodes.list(scope, { session_id: session });
    expect(listed.episodes.map((e) => e.content)).toEqual(['I prefer quiet mornings']);
  });

  it('keeps tenants apart: another tenant cannot record, list, end or recall a session', async () => {
    const other: RequestScope = { tenantId: 'tenant-episodes-b', principal: 'test' };
    const session = await newSession();
    await record(session, 'I prefer the north entrance');
    await expect(record(session, 'intruding', {}, other)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(brain.services.episodes.list(other, { session_id: session })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(brain.services.episodes.end(other, { session_id: session })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    const theirs = await brain.services.memory.recall(other, { query: 'north entrance', session });
    expect(theirs.episodes).toEqual([]);
    // Their own session of the same id is theirs alone.
    await brain.services.sessions.init(other, { session_id: session });
    expect((await brain.services.episodes.list(other, { session_id: session })).episodes).toEqual([]);
    await brain.services.episodes.end(scope, { session_id: session });
    expect(await episodeMemories(session, other)).toEqual([]);
    expect(await episodeMemories(session)).toHaveLength(1);
  });
});

describe('the episode routes', () => {
  it('records, lists and ends over REST; a bad body is 400 naming the field, an unknown session 404', async () => {
    const session = (await server.app.inject({ method: 'POST', url: '/v1/sessions', payload: {} })).json()
      .session_id as string;
    const url = `/v1/sessions/${session}/episodes`;
    const made = await server.app.inject({
      method: 'POST',
      url,
      payload: { role: 'user', content: 'We decided to use REST here', importance: 0.4 },
    });
    expect(made.statusCode).toBe(201);
    expect(made.json().episode).toMatchObject({
      session_id: session,
      seq: 1,
      role: 'user',
      state: 'buffered',
    });
    const bad = await server.app.inject({ method: 'POST', url, payload: { role: 'user', content: '' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/content/),
    });
    const unknown = await server.app.inject({
      method: 'POST',
      url: '/v1/sessions/ses_nope/episodes',
      payload: { role: 'user', content: 'hello' },
    });
    expect(unknown.statusCode).toBe(404);
    const listed = await server.app.inject({ method: 'GET', url });
    expect(listed.statusCode).toBe(200);
    expect(listed.json().episodes.map((e: { content: string }) => e.content)).toEqual([
      'We decided to use REST here',
    ]);
    const searched = await server.app.inject({
      method: 'POST',
      url: '/v1/memories/search',
      payload: { query: 'REST', session },
    });
    expect(searched.json().episodes).toEqual([
      expect.objectContaining({ content: 'We decided to use REST here', role: 'user', score: 1 }),
    ]);
    const ended = await server.app.inject({ method: 'POST', url: `/v1/sessions/${session}/end` });
    expect(ended.statusCode).toBe(200);
    expect(ended.json()).toMatchObject({
      session_id: session,
      evicted: 1,
      consolidated: [{ reason: 'decision' }],
    });
    const doc = (await server.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/sessions/{id}/episodes', '/v1/sessions/{id}/end']),
    );
    const metrics = await server.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/brain_episodes_total\{event="stored"\} [1-9]/);
    expect(metrics.body).toMatch(/brain_episodes_total\{event="consolidated"\} [1-9]/);
  });

  // Last in the file: it moves the shared clock a day on.
  it('the sessions job ends sessions idle BRAIN_SESSION_IDLE_HOURS, consolidating their buffers, and leaves active ones', async () => {
    const idle = await newSession();
    await record(idle, 'I prefer the night train to Vienna');
    clock.advance(23 * HOUR);
    const active = await newSession();
    await record(active, 'I prefer window seats on the night train');
    clock.advance(2 * HOUR);
    // The idle session is 25 h quiet (over the default 24), the active one 2 h.
    const run = await brain.scheduler.runNow('sessions');
    expect(run.outcome).toBe('succeeded');
    expect(run.message).toMatch(/idle sessions ended/);
    expect((await brain.services.episodes.list(scope, { session_id: idle })).episodes).toEqual([]);
    expect((await episodeMemories(idle)).map((m) => m.content)).toEqual([
      'I prefer the night train to Vienna',
    ]);
    const stillActive = await brain.services.episodes.list(scope, { session_id: active });
    expect(stillActive.episodes.map((e) => e.content)).toEqual(['I prefer window seats on the night train']);
    // Nothing left to end: the next run is skipped, and changes nothing.
    const again = await brain.scheduler.runNow('sessions');
    expect(again.outcome).toBe('skipped');
    expect(await episodeMemories(idle)).toHaveLength(1);
  });
});
