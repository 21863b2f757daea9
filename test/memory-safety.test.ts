/**
 * The memory service refuses what it could not keep or would regret: filters that select everything,
 * expiries in the past, metadata too deep or with keys a copy drops, text that UTF-8 cannot hold. It
 * keeps what a keyed write did not send, bounds every answer, and says truly why recall ran on text.
 */
import { describe, expect, it } from 'vitest';
import { MEMORY_LIMITS } from '../src/modules/memory/memory-schemas.js';
import { invalid, START, scope, setup } from './memory-fixture.js';

/** A value nested `levels` deep: {"a":{"a":…{"a":1}}}. Built without recursion. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { a: 1 };
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

describe('forget by filter', () => {
  async function seed(service: ReturnType<typeof setup>['service']) {
    await service.remember(scope, { content: 'Red is the favourite colour', tags: ['colour'] });
    await service.remember(scope, { content: 'The cat is called Miso', type: 'event' });
    await service.remember(scope, { content: 'Rust is the language of the month', project: 'p1' });
  }

  it.each([
    ['empty tags', { tags: [] }],
    ['empty types', { types: [] }],
    ['empty tags and types', { tags: [], types: [] }],
    ['no field', {}],
  ])('refuses a filter that adds no condition (%s) and forgets nothing, even hard', async (_, filter) => {
    const { service, count } = setup();
    await seed(service);
    for (const hard of [false, true]) {
      const message = await invalid(service.forget(scope, { filter, hard }));
      expect(message).toMatch(/filter: selects every memory/);
      expect(message).toMatch(/all: true/);
    }
    expect(await count()).toBe(3);
  });

  it('refuses empty strings as filter values instead of matching everything', async () => {
    const { service, count } = setup();
    await seed(service);
    expect(await invalid(service.forget(scope, { filter: { project: '' } }))).toMatch(
      /filter\.project: must not be empty/,
    );
    expect(await invalid(service.forget(scope, { filter: { session: '   ' } }))).toMatch(/filter\.session/);
    expect(await count()).toBe(3);
  });

  it('forgets only what a real condition selects and reports how many', async () => {
    const { service, count } = setup();
    await seed(service);
    const result = await service.forget(scope, { filter: { tags: ['colour'], types: [] } });
    expect(result).toMatchObject({ forgotten: 1, ids_truncated: false, hard: false });
    expect(await count()).toBe(2);
    expect(await service.forget(scope, { filter: { project: 'nope' } })).toMatchObject({ forgotten: 0 });
  });

  it('forgets everything only when asked with all: true, and lists at most 100 ids', async () => {
    const { service, count } = setup();
    await service.rememberMany(
      scope,
      Array.from({ length: 130 }, (_, i) => ({ content: `memory number ${i}` })),
    );
    expect(await invalid(service.forget(scope, { all: true, filter: { tags: ['x'] } }))).toMatch(
      /exactly one of id, key, filter or all/,
    );
    expect(await invalid(service.forget(scope, { all: false }))).toMatch(/all: must be true/);
    const result = await service.forget(scope, { all: true, hard: true });
    expect(result.forgotten).toBe(130);
    expect(result.ids).toHaveLength(MEMORY_LIMITS.forgetIdsShown);
    expect(result.ids_truncated).toBe(true);
    expect(await count()).toBe(0);
  });
});

describe('expiry', () => {
  it('refuses expires_at in the past or now on remember, in a batch and on update, writing nothing', async () => {
    const { service, count } = setup();
    const past = '2026-06-01T11:59:59Z';
    expect(await invalid(service.remember(scope, { content: 'x', expires_at: past }))).toMatch(
      /^expires_at: must be in the future/,
    );
    expect(await invalid(service.remember(scope, { content: 'x', expires_at: START }))).toMatch(
      /expires_at: must be in the future/,
    );
    expect(
      await invalid(
        service.rememberMany(scope, [{ content: 'fine' }, { content: 'stale', expires_at: past }]),
      ),
    ).toMatch(/^1\.expires_at: must be in the future/);
    expect(await count()).toBe(0);

    const { id } = await service.remember(scope, { content: 'kept', expires_at: '2026-06-02T00:00:00Z' });
    expect(await invalid(service.update(scope, { id, expires_at: past }))).toMatch(
      /expires_at: must be in the future/,
    );
    expect((await service.get(scope, { id })).expires_at).toBe('2026-06-02T00:00:00.000Z');
    // null still means "keep forever".
    expect((await service.update(scope, { id, expires_at: null })).expires_at).toBeNull();
  });

  it('refuses dates that do not exist', async () => {
    const { service } = setup();
    for (const date of ['2027-02-30T00:00:00Z', '2027-01-01T24:00:00Z', '2027-13-01T00:00:00Z']) {
      expect(await invalid(service.remember(scope, { content: 'x', expires_at: date }))).toMatch(
        /expires_at: must be an ISO 8601 date-time/,
      );
    }
  });
});

describe('a keyed remember', () => {
  it('replaces the content and keeps every attribute the caller did not send', async () => {
    const { service } = setup();
    const first = await service.remember(scope, {
      content: 'The deploy window is Tuesday',
      key: 'deploy-window',
      type: 'instruction',
      tags: ['ops', 'deploy'],
      metadata: { source: 'standup' },
      importance: 0.9,
      session: 'ses_1',
      expires_at: '2027-01-01T00:00:00Z',
    });
    const second = await service.remember(scope, {
      content: 'The deploy window is Wednesday',
      key: 'deploy-window',
    });
    expect(second).toEqual({ id: first.id, status: 'updated', deduplicated: false });
    const memory = await service.get(scope, { id: first.id });
    expect(memory).toMatchObject({
      content: 'The deploy window is Wednesday',
      type: 'instruction',
      tags: ['ops', 'deploy'],
      metadata: { source: 'standup' },
      importance: 0.9,
      session: 'ses_1',
      expires_at: '2027-01-01T00:00:00.000Z',
    });
    // Tags kept are still searchable as tags; the new content is what recall finds.
    const hits = await service.recall(scope, { query: 'deploy window Wednesday', tags: ['ops'] });
    expect(hits.hits.map((h) => h.id)).toEqual([first.id]);
  });

  it('changes exactly the attributes the caller sends', async () => {
    const { service } = setup();
    const { id } = await service.remember(scope, {
      content: 'Standup is at 9',
      key: 'standup',
      type: 'event',
      tags: ['team'],
      importance: 0.2,
    });
    await service.remember(scope, { content: 'Standup is at 10', key: 'standup', tags: [], ttl_seconds: 60 });
    const memory = await service.get(scope, { id });
    expect(memory).toMatchObject({ type: 'event', tags: [], importance: 0.2 });
    expect(memory.expires_at).toBe('2026-06-01T12:01:00.000Z');
    expect((await service.list(scope, { tags: ['team'] })).total).toBe(0);
  });
});

describe('metadata', () => {
  it(`accepts ${MEMORY_LIMITS.metadataDepth} levels and refuses one more, naming metadata and the limit`, async () => {
    const { service, count } = setup();
    await service.remember(scope, { content: 'deep enough', metadata: nested(MEMORY_LIMITS.metadataDepth) });
    const message = await invalid(
      service.remember(scope, { content: 'too deep', metadata: nested(MEMORY_LIMITS.metadataDepth + 1) }),
    );
    expect(message).toMatch(/metadata(\.a)+: must nest at most 16 levels/);
    expect(await count()).toBe(1);
  });

  it('refuses 10,000 levels with the field and the limit, not a stack overflow', async () => {
    const { service, count } = setup();
    const deep = JSON.parse(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`);
    const message = await invalid(service.remember(scope, { content: 'x', metadata: deep }));
    expect(message).toMatch(/^invalid input: metadata[.a]*: must nest at most 16 levels/);
    expect(message).not.toMatch(/call stack/i);
    const { id } = await service.remember(scope, { content: 'y' });
    expect(await invalid(service.update(scope, { id, metadata: deep }))).toMatch(/metadata/);
    expect(await count()).toBe(1);
  });

  it('refuses a __proto__ key (which a copy would drop) instead of storing the rest silently', async () => {
    const { service, count } = setup();
    const metadata = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    expect(await invalid(service.remember(scope, { content: 'x', metadata }))).toMatch(
      /metadata\.__proto__: the key __proto__ is not allowed/,
    );
    const inner = JSON.parse('{"list": [{"__proto__": 1}]}');
    expect(await invalid(service.remember(scope, { content: 'x', metadata: inner }))).toMatch(
      /metadata\.list\.0\.__proto__/,
    );
    expect(await count()).toBe(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses __proto__ as a top-level argument', async () => {
    const { service, count } = setup();
    const input = JSON.parse('{"content": "x", "__proto__": {"importance": 1}}');
    expect(await invalid(service.remember(scope, input))).toMatch(/__proto__/);
    expect(await count()).toBe(0);
  });
});

describe('text that UTF-8 cannot hold', () => {
  const lone = 'lone \ud800 high';

  it.each([
    ['content', { content: lone }],
    ['key', { content: 'x', key: lone }],
    ['project', { content: 'x', project: lone }],
    ['session', { content: 'x', session: lone }],
    ['tags.0', { content: 'x', tags: [lone] }],
    ['metadata.note', { content: 'x', metadata: { note: lone } }],
    ['metadata.\udc00', { content: 'x', metadata: { '\udc00': 1 } }],
  ])('refuses a lone surrogate in %s, naming it, and stores nothing', async (field, input) => {
    const { service, count } = setup();
    const message = await invalid(service.remember(scope, input));
    expect(message).toContain(`${field}:`);
    expect(message).toMatch(/lone surrogate/);
    expect(await count()).toBe(0);
  });

  it('refuses it in a recall query and an update, and keeps well-formed pairs unchanged', async () => {
    const { service } = setup();
    const emoji = 'Loves 🐈 and 𝄞 music';
    const { id } = await service.remember(scope, { content: emoji, tags: ['🐈'] });
    expect((await service.get(scope, { id })).content).toBe(emoji);
    expect(await invalid(service.recall(scope, { query: lone }))).toMatch(/query: must be valid Unicode/);
    expect(await invalid(service.update(scope, { id, content: lone }))).toMatch(/content: must be valid/);
    expect((await service.get(scope, { id })).content).toBe(emoji);
  });
});

describe('answer sizes', () => {
  it('ends a list page early past the response budget; paging still reaches every memory', async () => {
    const { service } = setup(null);
    const big = 60 * 1024;
    await service.rememberMany(
      scope,
      Array.from({ length: 40 }, (_, i) => ({ content: `${i} ${'x'.repeat(big)}` })),
    );
    const seen = new Set<string>();
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null) {
      const page = await service.list(scope, { limit: 200, offset });
      const bytes = page.items.reduce((sum, m) => sum + m.content.length, 0);
      expect(bytes).toBeLessThanOrEqual(MEMORY_LIMITS.responseBytes);
      expect(page.total).toBe(40);
      for (const m of page.items) seen.add(m.id);
      offset = page.next_offset;
      pages++;
    }
    expect(seen.size).toBe(40);
    expect(pages).toBeGreaterThan(1);
  });

  it('returns fewer than k recall hits rather than more than the budget', async () => {
    const { service } = setup(null);
    await service.rememberMany(
      scope,
      Array.from({ length: 30 }, (_, i) => ({ content: `zebra ${i} ${'y'.repeat(60 * 1024)}` })),
    );
    const result = await service.recall(scope, { query: 'zebra', k: 30 });
    const bytes = result.hits.reduce((sum, h) => sum + h.content.length, 0);
    expect(bytes).toBeLessThanOrEqual(MEMORY_LIMITS.responseBytes);
    expect(result.hits.length).toBeGreaterThan(0);
    expect(result.hits.length).toBeLessThan(30);
  });
});

describe('recall says truly why it ran on text alone', () => {
  it('reports no-query-vector, not no-embedder, for a query the embedder finds nothing in', async () => {
    const { service } = setup();
    await service.remember(scope, { content: 'Alarm: !!! means urgent' });
    const result = await service.recall(scope, { query: '!!!' });
    expect(result).toMatchObject({ mode: 'text-only', reason: 'no-query-vector' });
    const words = await service.recall(scope, { query: 'urgent alarm' });
    expect(words.mode).toBe('hybrid');
    expect(words.reason).toBeUndefined();
  });

  it('still reports no-embedder when there is none', async () => {
    const { service } = setup(null);
    expect(await service.recall(scope, { query: '!!!' })).toMatchObject({ reason: 'no-embedder' });
  });
});
