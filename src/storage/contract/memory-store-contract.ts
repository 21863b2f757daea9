import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../../core/ids.js';
import type { RequestScope } from '../../core/scope.js';
import { createHashEmbedder } from '../../modules/embeddings/hash-embedder.js';
import { contentHash, legacyContentHash } from '../../modules/memory/content-hash.js';
import type { ListQuery, MemoryStore, NewMemory } from '../../modules/memory/memory-store.js';

/** A store under test and how to dispose of it. Each driver's test file supplies a factory. */
export interface StoreHarness {
  store: MemoryStore;
  close(): Promise<void>;
}

const A: RequestScope = { tenantId: 'tenant-a' };
const B: RequestScope = { tenantId: 'tenant-b' };
const NOW = '2026-06-01T12:00:00.000Z';
const embedder = createHashEmbedder(256);

/**
 * A memory row as the service would write it, without an embedding: the defaults of an unkeyed fact
 * created at NOW, overridden by `extra`. Driver tests build their rows from it too.
 */
export function newMemoryRow(content: string, extra: Partial<NewMemory> = {}): NewMemory {
  return {
    id: newId('mem', Date.parse(extra.created_at ?? NOW)),
    key: null,
    content,
    content_hash: contentHash(content),
    type: 'fact',
    tags: [],
    metadata: {},
    importance: 0.5,
    project: null,
    session: null,
    created_at: NOW,
    expires_at: null,
    valid_from: null,
    valid_to: null,
    embedding: null,
    embedding_model: null,
    keep: [],
    ...extra,
  };
}

async function row(content: string, extra: Partial<NewMemory> = {}): Promise<NewMemory> {
  const [embedding] = await embedder.embed([content]);
  return newMemoryRow(content, { embedding: embedding ?? null, embedding_model: embedder.model, ...extra });
}

const listAll = (overrides: Partial<ListQuery> = {}): ListQuery => ({
  limit: 100,
  offset: 0,
  sort: 'created_at',
  order: 'desc',
  ...overrides,
});

async function search(store: MemoryStore, scope: RequestScope, text: string, filter = {}) {
  const [embedding] = await embedder.embed([text]);
  return store.candidates(scope, {
    text,
    embedding: embedding ?? null,
    embedding_model: embedder.model,
    filter,
    limit: 20,
    now: NOW,
  });
}

/**
 * The storage contract of the memory module. Every driver (SQLite now, PostgreSQL later) runs this same
 * suite unchanged against a real database; it speaks only through the MemoryStore port.
 */
export function runMemoryStoreContract(
  driver: string,
  open: () => Promise<StoreHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`MemoryStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: StoreHarness;
    beforeEach(async () => {
      h = await open();
    });
    afterEach(async () => {
      await h?.close();
    });

    it('stores a memory and reads every field back', async () => {
      const m = await row('Alice prefers green tea', {
        key: 'drink',
        type: 'preference',
        tags: ['food', 'tea'],
        metadata: { source: 'chat', n: 2 },
        importance: 0.9,
        project: 'p1',
        session: 's1',
        expires_at: '2027-01-01T00:00:00.000Z',
      });
      expect(await h.store.insert(A, [m])).toEqual([{ id: m.id, status: 'created' }]);
      const got = await h.store.get(A, m.id, NOW);
      expect(got).toMatchObject({
        id: m.id,
        key: 'drink',
        content: 'Alice prefers green tea',
        type: 'preference',
        tags: ['food', 'tea'],
        metadata: { source: 'chat', n: 2 },
        importance: 0.9,
        project: 'p1',
        session: 's1',
        storage_tier: 'hot',
        access_count: 0,
        created_at: NOW,
        expires_at: '2027-01-01T00:00:00.000Z',
        accessed_at: null,
      });
      expect(await h.store.getByKey(A, 'drink', 'p1', NOW)).toMatchObject({ id: m.id });
    });

    it('keeps tenants apart on every operation', async () => {
      const m = await row('the launch code is swordfish', { key: 'code' });
      await h.store.insert(A, [m]);
      expect(await h.store.get(B, m.id, NOW)).toBeNull();
      expect(await h.store.getByKey(B, 'code', null, NOW)).toBeNull();
      expect((await h.store.list(B, listAll(), NOW)).total).toBe(0);
      expect((await search(h.store, B, 'launch code swordfish')).memories.size).toBe(0);
      expect(await h.store.update(B, { id: m.id }, { importance: 1 }, NOW)).toBeNull();
      expect(await h.store.forget(B, { id: m.id }, { hard: true, now: NOW })).toEqual([]);
      expect(await h.store.forget(B, { filter: { types: ['fact'] } }, { hard: false, now: NOW })).toEqual([]);
      expect(
        (await h.store.overview(B, { project: null, limit: 10, priorityTypes: [], now: NOW })).total,
      ).toBe(0);
      await h.store.touch(B, [m.id], NOW);
      expect(await h.store.get(A, m.id, NOW)).toMatchObject({ content: m.content, access_count: 0 });
      // The same key in another tenant is another memory.
      const other = await row('B has its own code', { key: 'code' });
      expect((await h.store.insert(B, [other]))[0]?.status).toBe('created');
    });

    it('reports what a tenant holds: memories not forgotten and their bytes', async () => {
      expect(await h.store.usage(A)).toEqual({ memories: 0, bytes: 0 });
      const one = await row('café', { metadata: { a: 1 } });
      const two = await row('second');
      await h.store.insert(A, [one, two]);
      const usage = await h.store.usage(A);
      expect(usage.memories).toBe(2);
      // Bytes of UTF-8 (é is two) plus the stored metadata JSON, whose spacing is the engine's.
      const metadataBytes = usage.bytes - Buffer.byteLength('cafésecond');
      expect(metadataBytes).toBeGreaterThanOrEqual('{"a":1}'.length + '{}'.length);
      expect(metadataBytes).toBeLessThanOrEqual('{"a": 1}'.length + '{}'.length);
      expect(await h.store.usage(B)).toEqual({ memories: 0, bytes: 0 });
      await h.store.forget(A, { id: two.id }, { hard: false, now: NOW });
      expect((await h.store.usage(A)).memories).toBe(1);
    });

    it('writes a batch all or nothing', async () => {
      const good = await row('the first row of the batch');
      const clash = await row('a second row reusing the first id', { id: good.id });
      await expect(h.store.insert(A, [good, clash])).rejects.toThrow();
      expect((await h.store.list(A, listAll(), NOW)).total).toBe(0);
      expect((await search(h.store, A, 'first row batch')).memories.size).toBe(0);
      // The store is still usable, and the rows go in once the batch is valid.
      expect(await h.store.insert(A, [good])).toEqual([{ id: good.id, status: 'created' }]);
    });

    it('replaces a keyed memory in place and dedupes identical unkeyed content', async () => {
      const first = await row('favourite colour is blue', { key: 'colour', project: 'p' });
      await h.store.insert(A, [first]);
      const second = await row('favourite colour is red', { key: 'colour', project: 'p', tags: ['x'] });
      expect(await h.store.insert(A, [second])).toEqual([{ id: first.id, status: 'updated' }]);
      expect(await h.store.get(A, first.id, NOW)).toMatchObject({
        content: 'favourite colour is red',
        tags: ['x'],
      });
      const elsewhere = await row('favourite colour is red', { key: 'colour', project: 'q' });
      expect((await h.store.insert(A, [elsewhere]))[0]?.status).toBe('created');
      const plain = await row('water boils at 100 C');
      await h.store.insert(A, [plain]);
      const again = await row('water boils at 100 C');
      expect(await h.store.insert(A, [again])).toEqual([
        { id: plain.id, status: 'duplicate', deduplicated: 'exact' },
      ]);
      expect((await h.store.list(A, listAll(), NOW)).total).toBe(3);
      const old = (await search(h.store, A, 'favourite colour blue')).memories;
      expect([...old.values()].some((m) => m.content.includes('blue'))).toBe(false);
    });

    it('lists with filters, sorting and paging', async () => {
      const rows = [
        await row('one apple', {
          project: 'p',
          type: 'fact',
          tags: ['a', 'b'],
          created_at: '2026-01-01T00:00:00.000Z',
        }),
        await row('two apples', {
          project: 'p',
          type: 'event',
          tags: ['a'],
          created_at: '2026-02-01T00:00:00.000Z',
        }),
        await row('three apples', {
          project: 'q',
          session: 's',
          importance: 0.9,
          created_at: '2026-03-01T00:00:00.000Z',
        }),
      ];
      await h.store.insert(A, rows);
      const ids = (q: Partial<ListQuery>) =>
        h.store.list(A, listAll(q), NOW).then((r) => r.items.map((m) => m.content));
      expect(await ids({})).toEqual(['three apples', 'two apples', 'one apple']);
      expect(await ids({ order: 'asc' })).toEqual(['one apple', 'two apples', 'three apples']);
      expect(await ids({ project: 'p' })).toEqual(['two apples', 'one apple']);
      expect(await ids({ session: 's' })).toEqual(['three apples']);
      expect(await ids({ types: ['event'] })).toEqual(['two apples']);
      expect(await ids({ tags: ['a', 'b'] })).toEqual(['one apple']);
      expect(await ids({ since: '2026-02-01T00:00:00Z', until: '2026-03-01T00:00:00Z' })).toEqual([
        'two apples',
      ]);
      expect(await ids({ since: '2026-02-01T01:00:00+01:00' })).toEqual(['three apples', 'two apples']);
      expect(await ids({ sort: 'importance', limit: 1 })).toEqual(['three apples']);
      const page = await h.store.list(A, listAll({ limit: 2, offset: 2 }), NOW);
      expect(page).toMatchObject({ total: 3, items: [{ content: 'one apple' }] });
    });

    it('updates by id and by key, and reports a missing target', async () => {
      const m = await row('meeting on monday', { key: 'meeting', project: 'work' });
      await h.store.insert(A, [m]);
      const [embedding] = await embedder.embed(['meeting moved to friday']);
      const updated = await h.store.update(
        A,
        { key: 'meeting', project: 'work' },
        {
          content: 'meeting moved to friday',
          content_hash: contentHash('x'),
          embedding,
          embedding_model: embedder.model,
          tags: ['cal'],
        },
        '2026-06-02T00:00:00.000Z',
      );
      expect(updated).toMatchObject({
        id: m.id,
        content: 'meeting moved to friday',
        tags: ['cal'],
        updated_at: '2026-06-02T00:00:00.000Z',
      });
      expect(
        await h.store.update(A, { id: m.id }, { importance: 0.1, metadata: { a: 1 } }, NOW),
      ).toMatchObject({
        importance: 0.1,
        metadata: { a: 1 },
        content: 'meeting moved to friday',
      });
      const hits = await search(h.store, A, 'friday');
      expect(hits.text.map((t) => t.id)).toEqual([m.id]);
      expect((await search(h.store, A, 'monday')).text).toEqual([]);
      expect(await h.store.update(A, { key: 'meeting', project: null }, { importance: 1 }, NOW)).toBeNull();
    });

    it('forgets softly, hard, and by filter; forgotten memories vanish from every read', async () => {
      const soft = await row('soft target zebra', { key: 'z' });
      const hard = await row('hard target zebra');
      const keep = await row('keep this zebra', { type: 'event' });
      await h.store.insert(A, [soft, hard, keep]);
      expect(await h.store.forget(A, { key: 'z', project: null }, { hard: false, now: NOW })).toEqual([
        soft.id,
      ]);
      expect(await h.store.forget(A, { id: hard.id }, { hard: true, now: NOW })).toEqual([hard.id]);
      expect(await h.store.get(A, soft.id, NOW)).toBeNull();
      expect(await h.store.get(A, hard.id, NOW)).toBeNull();
      const found = await search(h.store, A, 'target zebra');
      expect([...found.memories.keys()]).toEqual([keep.id]);
      expect(found.vector.map((v) => v.id)).toEqual([keep.id]);
      // A soft-deleted memory can still be purged by id; a purged one is gone for good.
      expect(await h.store.forget(A, { id: soft.id }, { hard: true, now: NOW })).toEqual([soft.id]);
      expect(await h.store.forget(A, { id: soft.id }, { hard: true, now: NOW })).toEqual([]);
      // The key is free again after a forget.
      const reuse = await row('new z', { key: 'z' });
      expect((await h.store.insert(A, [reuse]))[0]?.status).toBe('created');
      expect(await h.store.forget(A, { filter: { types: ['event'] } }, { hard: false, now: NOW })).toEqual([
        keep.id,
      ]);
      expect((await h.store.list(A, listAll(), NOW)).items.map((m) => m.id)).toEqual([reuse.id]);
    });

    it('refuses a filter that selects everything; only { all: true } forgets every memory', async () => {
      const a = await row('first of three', { tags: ['t'] });
      const b = await row('second of three');
      await h.store.insert(A, [a, b]);
      await h.store.insert(B, [await row('another tenant keeps this')]);
      for (const filter of [{}, { tags: [] }, { types: [], tags: [] }]) {
        await expect(h.store.forget(A, { filter }, { hard: true, now: NOW })).rejects.toMatchObject({
          code: 'INVALID_INPUT',
        });
      }
      expect((await h.store.list(A, listAll(), NOW)).total).toBe(2);
      expect((await h.store.forget(A, { all: true }, { hard: false, now: NOW })).sort()).toEqual(
        [a.id, b.id].sort(),
      );
      expect((await h.store.list(A, listAll(), NOW)).total).toBe(0);
      expect((await h.store.list(B, listAll(), NOW)).total).toBe(1);
    });

    it('a keyed write keeps the attributes named in keep and sets the others', async () => {
      const first = await row('deploys on tuesday', {
        key: 'deploy',
        type: 'instruction',
        tags: ['ops'],
        metadata: { by: 'ann' },
        importance: 0.9,
        session: 's1',
        expires_at: '2027-01-01T00:00:00.000Z',
      });
      await h.store.insert(A, [first]);
      const second = await row('deploys on wednesday', {
        key: 'deploy',
        importance: 0.3,
        keep: ['type', 'tags', 'metadata', 'session', 'expires_at'],
      });
      expect(await h.store.insert(A, [second])).toEqual([{ id: first.id, status: 'updated' }]);
      expect(await h.store.get(A, first.id, NOW)).toMatchObject({
        content: 'deploys on wednesday',
        type: 'instruction',
        tags: ['ops'],
        metadata: { by: 'ann' },
        importance: 0.3,
        session: 's1',
        expires_at: '2027-01-01T00:00:00.000Z',
      });
      expect((await h.store.list(A, listAll({ tags: ['ops'] }), NOW)).total).toBe(1);
      expect((await search(h.store, A, 'wednesday')).text.map((t) => t.id)).toEqual([first.id]);
    });

    it('hides expired memories', async () => {
      const gone = await row('temporary wifi password hunter2', { expires_at: '2026-05-01T00:00:00.000Z' });
      const live = await row('permanent wifi name', { expires_at: '2026-07-01T00:00:00.000Z' });
      await h.store.insert(A, [gone, live]);
      expect(await h.store.get(A, gone.id, NOW)).toBeNull();
      expect((await h.store.list(A, listAll(), NOW)).items.map((m) => m.id)).toEqual([live.id]);
      expect([...(await search(h.store, A, 'wifi password')).memories.keys()]).toEqual([live.id]);
      expect(await h.store.get(A, live.id, '2026-08-01T00:00:00.000Z')).toBeNull();
    });

    it('finds candidates by words (stemmed) and by vector, within the filter', async () => {
      const run = await row('Bob went running in the park every morning', { project: 'health' });
      const cook = await row('Carol is cooking pasta for dinner', { project: 'food' });
      const swim = await row('Dave swims at the lake', { project: 'health' });
      await h.store.insert(A, [run, cook, swim]);
      const byWord = await search(h.store, A, 'who runs in parks?');
      expect(byWord.text[0]?.id).toBe(run.id);
      expect(byWord.text[0]?.score).toBeGreaterThan(0);
      expect(byWord.vector[0]?.id).toBe(run.id);
      expect(byWord.vector[0]?.similarity).toBeGreaterThan(byWord.vector[1]?.similarity ?? -1);
      expect(byWord.memories.get(run.id)?.content).toBe(run.content);
      const filtered = await search(h.store, A, 'cooking pasta', { project: 'health' });
      expect(filtered.text).toEqual([]);
      expect(filtered.vector.every((v) => v.id !== cook.id)).toBe(true);
      expect((await search(h.store, A, '?! ...')).text).toEqual([]);
      // Query text that looks like FTS syntax is treated as words.
      expect((await search(h.store, A, 'pasta" OR NEAR(* -')).text[0]?.id).toBe(cook.id);
    });

    it("ranks a tenant's candidates the same, scores included, whatever another tenant stores", async () => {
      // More matches than a short list holds, in different mixes and lengths.
      const words = [
        'harbor lantern festival',
        'harbor boats at night',
        'lantern repair shop',
        'the festival',
      ];
      const mine = Array.from({ length: 160 }, (_, i) => `${words[i % 4]} ${'note '.repeat(i % 7)}${i}`);
      // Another tenant with every query word past the match budget (1,000 documents), in short texts.
      const theirs = Array.from({ length: 1_100 }, (_, i) => `harbor lantern festival ${i}`);
      const load = async (store: MemoryStore, scope: RequestScope, contents: string[]) =>
        store.insert(scope, await Promise.all(contents.map((c) => row(c))));
      const view = async (store: MemoryStore) => {
        const found = await search(store, A, 'harbor lantern festival');
        const content = (id: string) => found.memories.get(id)?.content;
        return {
          text: found.text.map((t) => [content(t.id), t.score]),
          vector: found.vector.map((v) => [content(v.id), v.similarity]),
        };
      };
      await load(h.store, A, mine);
      const shared = await open();
      try {
        await load(shared.store, A, mine);
        await load(shared.store, B, theirs);
        const alone = await view(h.store);
        expect(alone.text.length).toBeGreaterThan(10);
        expect(await view(shared.store)).toEqual(alone);
      } finally {
        await shared.close();
      }
    });

    it('counts accesses', async () => {
      const m = await row('counted');
      await h.store.insert(A, [m]);
      await h.store.touch(A, [m.id], '2026-06-01T13:00:00.000Z');
      await h.store.touch(A, [m.id], '2026-06-01T14:00:00.000Z');
      expect(await h.store.get(A, m.id, NOW)).toMatchObject({
        access_count: 2,
        accessed_at: '2026-06-01T14:00:00.000Z',
      });
    });

    it('reinforces the memory an exact duplicate repeats: same normalised content, same id', async () => {
      const later = '2026-06-01T13:00:00.000Z';
      const first = await row('Water boils at 100 C', { importance: 0.3 });
      await h.store.insert(A, [first]);
      // Case and spacing fold; a given importance raises the memory's to it.
      const again = await row('  water  BOILS at 100 C ', { importance: 0.8, created_at: later });
      expect(await h.store.insert(A, [again])).toEqual([
        { id: first.id, status: 'duplicate', deduplicated: 'exact' },
      ]);
      expect(await h.store.get(A, first.id, later)).toMatchObject({
        content: 'Water boils at 100 C',
        access_count: 1,
        importance: 0.8,
        updated_at: later,
        accessed_at: later,
      });
      // No importance given: it grows by the step; a lower one given never lowers it.
      await h.store.insert(A, [
        await row('water boils at 100 c', { keep: ['importance'], created_at: later }),
      ]);
      await h.store.insert(A, [await row('water boils at 100 c', { importance: 0.1, created_at: later })]);
      const reinforced = await h.store.get(A, first.id, later);
      expect(reinforced?.access_count).toBe(3);
      expect(reinforced?.importance).toBeCloseTo(0.85, 6);
      // Another project, or a different digit, is another memory.
      expect(
        (await h.store.insert(A, [await row('water boils at 100 C', { project: 'p' })]))[0]?.status,
      ).toBe('created');
      expect((await h.store.insert(A, [await row('water boils at 90 C')]))[0]?.status).toBe('created');
      expect((await h.store.list(A, listAll(), later)).total).toBe(3);
    });

    it("merges an exact duplicate's tags, metadata and expiry into the memory it repeats", async () => {
      const at = (s: number) => new Date(Date.parse(NOW) + s * 1000).toISOString();
      const first = await row('Standup moved to 9:30', {
        type: 'event',
        tags: ['team'],
        metadata: { owner: 'ann', room: 'A' },
        expires_at: at(60),
      });
      await h.store.insert(A, [first]);
      // Repeated without a TTL, with other tags, another type and metadata.
      const again = await row('standup moved to 9:30', {
        type: 'decision',
        tags: ['calendar', 'team'],
        metadata: { room: 'B' },
        created_at: at(10),
        keep: ['expires_at', 'importance'],
      });
      expect(await h.store.insert(A, [again])).toEqual([
        { id: first.id, status: 'duplicate', deduplicated: 'exact' },
      ]);
      // Past the first write's expiry it is still there: no expiry is later than any.
      expect(await h.store.get(A, first.id, at(120))).toMatchObject({
        content: 'Standup moved to 9:30',
        type: 'event',
        tags: ['team', 'calendar'],
        metadata: { owner: 'ann', room: 'B' },
        expires_at: null,
        access_count: 1,
      });
      expect(await h.store.forget(A, { expired: true, limit: 10 }, { hard: true, now: at(120) })).toEqual([]);
      // The new tag filters and searches like one it was written with; the same statement keeps no version.
      const tagged = await h.store.list(A, listAll({ tags: ['calendar'] }), at(120));
      expect(tagged.items.map((m) => m.id)).toEqual([first.id]);
      const found = await h.store.candidates(A, {
        text: 'calendar',
        embedding: null,
        embedding_model: null,
        filter: {},
        limit: 20,
        now: at(120),
      });
      expect(found.text.map((t) => t.id)).toEqual([first.id]);
      expect(await h.store.versions(A, first.id, at(120))).toEqual([]);
      // A permanent memory stays permanent when repeated with a TTL.
      await h.store.insert(A, [await row('Standup moved to 9:30', { expires_at: at(30) })]);
      expect((await h.store.get(A, first.id, at(120)))?.expires_at).toBeNull();

      // A longer TTL extends an expiring memory; a shorter one never shortens it.
      const parking = await row('Parking closes at 6', { expires_at: at(60) });
      await h.store.insert(A, [parking]);
      await h.store.insert(A, [
        await row('parking closes at 6', { expires_at: at(3600), created_at: at(10) }),
      ]);
      expect((await h.store.get(A, parking.id, at(120)))?.expires_at).toBe(at(3600));
      await h.store.insert(A, [
        await row('parking closes at 6', { expires_at: at(600), created_at: at(20) }),
      ]);
      expect((await h.store.get(A, parking.id, at(1200)))?.expires_at).toBe(at(3600));
      expect(await h.store.get(A, parking.id, at(3600))).toBeNull();

      // Merged metadata past the input limit (16 KiB): the repeat's own replaces it, never grows past.
      const big = (key: string) => ({ [key]: 'x'.repeat(9 * 1024) });
      const noted = await row('The lease ends in May', { metadata: big('first') });
      await h.store.insert(A, [noted]);
      await h.store.insert(A, [await row('the lease ends in may', { metadata: big('second') })]);
      expect((await h.store.get(A, noted.id, at(10)))?.metadata).toEqual(big('second'));
    });

    it('finds a memory stored under the legacy (trim-only) hash as an exact duplicate', async () => {
      const old = await row('Legacy Fact', { content_hash: legacyContentHash('Legacy Fact') });
      await h.store.insert(A, [old]);
      const again = await row('Legacy Fact');
      expect(await h.store.insert(A, [again])).toEqual([
        { id: old.id, status: 'duplicate', deduplicated: 'exact' },
      ]);
      expect((await h.store.list(A, listAll(), NOW)).total).toBe(1);
    });

    it('reinforces the oldest live rewording of an unkeyed write that asks (merge_reworded), nothing else', async () => {
      const later = '2026-06-01T13:00:00.000Z';
      const first = await row('The deploy runs every night at 2am.');
      await h.store.insert(A, [first]);
      const reworded = (content: string, extra: Partial<NewMemory> = {}) =>
        row(content, { merge_reworded: true, created_at: later, ...extra });
      // Another end of the same words, without the article or the full stop: the first is reinforced.
      expect(await h.store.insert(A, [await reworded('Every night at 2am, the deploy runs')])).toEqual([
        { id: first.id, status: 'duplicate', deduplicated: 'reworded' },
      ]);
      expect(await h.store.get(A, first.id, later)).toMatchObject({
        content: 'The deploy runs every night at 2am.',
        access_count: 1,
        accessed_at: later,
      });
      // Other words, an order no rotation gives, another project or tenant, or a write that does not ask:
      // each a memory of its own.
      const apart = [
        [A, await reworded('Every night at 4am the deploy runs')],
        [A, await reworded('at 2am every night the deploy runs')],
        [A, await reworded('Every night at 2am the deploy runs', { project: 'p' })],
        [B, await reworded('Every night at 2am the deploy runs')],
        [A, await row('Every night at 2am the deploy runs', { created_at: later })],
      ] as const;
      for (const [scope, m] of apart)
        expect(await h.store.insert(scope, [m])).toEqual([{ id: m.id, status: 'created' }]);
      // Within one batch the second rewording lands on the first of the batch.
      const one = await reworded('Rent is paid on the first.');
      const two = await reworded('on the first rent is paid');
      expect(await h.store.insert(A, [one, two])).toEqual([
        { id: one.id, status: 'created' },
        { id: one.id, status: 'duplicate', deduplicated: 'reworded' },
      ]);
      // A keyed write updates its key; an expired or forgotten memory is nobody's rewording.
      const keyed = await reworded('paid on the first rent is', { key: 'rent' });
      expect(await h.store.insert(A, [keyed])).toEqual([{ id: keyed.id, status: 'created' }]);
      await h.store.forget(A, { id: one.id }, { hard: false, now: later });
      const after = await reworded('rent is paid on the first');
      expect(await h.store.insert(A, [after])).toEqual([{ id: after.id, status: 'created' }]);
      const brief = await row('The gate code is 4417', { expires_at: '2026-06-01T12:30:00.000Z' });
      await h.store.insert(A, [brief]);
      const code = await reworded('4417 the gate code is');
      expect(await h.store.insert(A, [code])).toEqual([{ id: code.id, status: 'created' }]);
    });

    it('matches a rewording by content an update gave a memory, not by the content it had', async () => {
      const m = await row('The lease ends in May');
      await h.store.insert(A, [m]);
      await h.store.update(
        A,
        { id: m.id },
        { content: 'The lease ends in June', content_hash: contentHash('The lease ends in June') },
        NOW,
      );
      const old = await row('in May the lease ends', { merge_reworded: true });
      expect(await h.store.insert(A, [old])).toEqual([{ id: old.id, status: 'created' }]);
      const current = await row('In June the lease ends', { merge_reworded: true });
      expect(await h.store.insert(A, [current])).toEqual([
        { id: m.id, status: 'duplicate', deduplicated: 'reworded' },
      ]);
    });

    it('counts every one of concurrent duplicates: one memory, each repeat an access', async () => {
      const tags = Array.from({ length: 6 }, (_, i) => `t${i}`);
      const rows = await Promise.all(tags.map((tag) => row('concurrent repeated fact', { tags: [tag] })));
      const writes = await Promise.all(rows.map((m) => h.store.insert(A, [m])));
      const outcomes = writes.flat();
      const created = outcomes.filter((o) => o.status === 'created');
      expect(created).toHaveLength(1);
      expect(new Set(outcomes.map((o) => o.id))).toEqual(new Set([created[0]?.id]));
      const memory = await h.store.get(A, created[0]?.id as string, NOW);
      expect(memory).toMatchObject({ access_count: 5 });
      // Each repeat's tag merged in, none lost to another's.
      expect(new Set(memory?.tags)).toEqual(new Set(tags));
    });

    it('merges a write into the live near-duplicate it names (merge_into), else stores it', async () => {
      const kept = await row('the cat is named Tom', { importance: 0.4 });
      await h.store.insert(A, [kept]);
      const near = await row('our cat is called Tom', { merge_into: { id: kept.id, similarity: 0.97 } });
      expect(await h.store.insert(A, [near])).toEqual([
        { id: kept.id, status: 'duplicate', deduplicated: 'similar', similarity: 0.97 },
      ]);
      expect(await h.store.get(A, kept.id, NOW)).toMatchObject({ access_count: 1, importance: 0.5 });
      expect((await h.store.list(A, listAll(), NOW)).total).toBe(1);
      // Its exact duplicate or its rewording comes before the near-duplicate it names.
      const other = await row('the dog is called Rex');
      await h.store.insert(A, [other]);
      const exact = await row('The dog is called Rex', { merge_into: { id: kept.id, similarity: 0.96 } });
      const reworded = await row('Rex the dog is called', {
        merge_into: { id: kept.id, similarity: 0.95 },
        merge_reworded: true,
      });
      expect(await h.store.insert(A, [exact, reworded])).toEqual([
        { id: other.id, status: 'duplicate', deduplicated: 'exact' },
        { id: other.id, status: 'duplicate', deduplicated: 'reworded' },
      ]);
      // A merge target forgotten meanwhile: the write is stored after all.
      await h.store.forget(A, { id: kept.id }, { hard: false, now: NOW });
      const late = await row('the cat is called Tom', { merge_into: { id: kept.id, similarity: 0.97 } });
      expect(await h.store.insert(A, [late])).toEqual([{ id: late.id, status: 'created' }]);
    });

    it('supersedes a live memory in the write transaction, or refuses the whole batch and writes nothing', async () => {
      const old = await row('the office is on the third floor', { valid_from: '2026-01-01T00:00:00.000Z' });
      await h.store.insert(A, [old]);
      const later = '2026-06-02T00:00:00.000Z';
      const moved = await row('the office is on the fifth floor', { supersedes: old.id, created_at: later });
      expect(await h.store.insert(A, [moved])).toEqual([{ id: moved.id, status: 'created' }]);
      expect(await h.store.get(A, old.id, later)).toMatchObject({ superseded_by: moved.id, valid_to: later });
      const versions = await h.store.versions(A, old.id, later);
      expect(versions?.map((v) => [v.content, v.valid_to, v.change])).toEqual([
        ['the office is on the third floor', null, 'superseded'],
      ]);
      // Another tenant cannot supersede A's memory; a second supersession of it and a repeat within a
      // batch are refused; each refusal writes nothing of its batch.
      const refused = [
        [B, [await row('b supersedes a', { supersedes: moved.id })]],
        [A, [await row('the office moved again', { supersedes: old.id })]],
        [
          A,
          [
            await row('first of two', { supersedes: moved.id }),
            await row('second of two', { supersedes: moved.id }),
          ],
        ],
      ] as const;
      for (const [scope, batch] of refused)
        await expect(h.store.insert(scope, [...batch])).rejects.toThrow(/supersedes: /);
      expect((await h.store.list(A, listAll(), later)).total).toBe(2);
      expect((await h.store.list(B, listAll(), later)).total).toBe(0);
      expect((await h.store.get(A, moved.id, later))?.superseded_by).toBeNull();
      // A write that lands on the memory it names (a repeat of it) supersedes nothing.
      const repeat = await row('the office is on the fifth floor', {
        supersedes: moved.id,
        created_at: later,
      });
      expect(await h.store.insert(A, [repeat])).toMatchObject([{ id: moved.id, status: 'duplicate' }]);
      expect((await h.store.get(A, moved.id, later))?.superseded_by).toBeNull();
      // The superseded memory stepped aside: its content said again is a memory of its own, which may
      // supersede the one that replaced it (the office is back on the third floor).
      const back = await row('the office is on the third floor', { supersedes: moved.id, created_at: later });
      expect(await h.store.insert(A, [back])).toEqual([{ id: back.id, status: 'created' }]);
      expect((await h.store.get(A, moved.id, later))?.superseded_by).toBe(back.id);
      expect((await h.store.get(A, old.id, later))?.superseded_by).toBe(moved.id);
      // So does a keyed one: a write under its key makes a new memory, and an update by key finds that.
      const keyed = await row('the printer is on the left', { key: 'printer' });
      await h.store.insert(A, [keyed]);
      await h.store.insert(A, [await row('the printer is on the right', { supersedes: keyed.id })]);
      const again = await row('the printer is by the door', { key: 'printer' });
      expect(await h.store.insert(A, [again])).toEqual([{ id: again.id, status: 'created' }]);
      expect((await h.store.getByKey(A, 'printer', null, later))?.id).toBe(again.id);
      expect((await h.store.get(A, keyed.id, later))?.content).toBe('the printer is on the left');
    });

    it('gives init an overview: priority types and importance first, then recent, per project', async () => {
      await h.store.insert(A, [
        await row('old but critical', {
          type: 'system_critical',
          importance: 0.3,
          project: 'p',
          created_at: '2026-01-01T00:00:00.000Z',
        }),
        await row('important fact', {
          importance: 0.95,
          project: 'p',
          created_at: '2026-02-01T00:00:00.000Z',
        }),
        await row('newest trivia', { importance: 0.1, project: 'p', created_at: '2026-05-01T00:00:00.000Z' }),
        await row('other project', { importance: 1, project: 'q' }),
        await row('global note', { importance: 1 }),
      ]);
      const o = await h.store.overview(A, {
        project: 'p',
        limit: 10,
        priorityTypes: ['system_critical'],
        now: NOW,
      });
      expect(o.total).toBe(3);
      expect(o.important.map((m) => m.content)).toEqual([
        'old but critical',
        'important fact',
        'newest trivia',
      ]);
      expect(o.recent[0]?.content).toBe('newest trivia');
      // The priority types are the caller's policy: without them, importance alone orders.
      const plain = await h.store.overview(A, { project: 'p', limit: 10, priorityTypes: [], now: NOW });
      expect(plain.important.map((m) => m.content)).toEqual([
        'important fact',
        'old but critical',
        'newest trivia',
      ]);
      const global = await h.store.overview(A, {
        project: null,
        limit: 10,
        priorityTypes: ['system_critical'],
        now: NOW,
      });
      expect(global.important.map((m) => m.content)).toEqual(['global note']);
    });
  });
}
