import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RequestScope } from '../../core/scope.js';
import type { EpisodeStore, NewEpisode } from '../../modules/episodes/episode-store.js';
import type { SessionStore } from '../../modules/sessions/session-store.js';

export interface EpisodeHarness {
  stores: { episodes: EpisodeStore; sessions: SessionStore };
  close(): Promise<void>;
}

const A: RequestScope = { tenantId: 'tenant-a' };
const B: RequestScope = { tenantId: 'tenant-b' };
const T0 = '2026-06-01T12:00:00.000Z';

function episode(id: string, session: string, digest = id, extra: Partial<NewEpisode> = {}): NewEpisode {
  return {
    id,
    session_id: session,
    role: 'user',
    content: `content of ${id}`,
    digest,
    occurred_at: T0,
    recorded_at: T0,
    importance: null,
    metadata: {},
    ...extra,
  };
}

/**
 * The storage contract of the episodic buffer, run unchanged by every driver against a real database:
 * the bound and eviction order, links that a racing second call cannot repeat, and tenants kept apart.
 */
export function runEpisodeStoreContract(
  driver: string,
  open: () => Promise<EpisodeHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`EpisodeStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: EpisodeHarness;
    let store: EpisodeStore;
    beforeEach(async () => {
      h = await open();
      store = h.stores.episodes;
      await h.stores.sessions.open(A, { id: 's1', project: null, client: null, now: T0 });
    });
    afterEach(async () => {
      await h?.close();
    });

    it('appends in seq order and evicts the oldest beyond the bound, each once', async () => {
      const evicted: string[][] = [];
      for (const id of ['e1', 'e2', 'e3', 'e4']) {
        const r = await store.append(A, episode(id, 's1', id, { metadata: { n: id } }), 2);
        evicted.push(r?.evicted.map((e) => e.id) ?? ['(no session)']);
      }
      expect(evicted).toEqual([[], [], ['e1'], ['e2']]);
      const buffer = await store.buffer(A, 's1');
      expect(buffer.map((e) => [e.id, e.seq, e.state, e.metadata])).toEqual([
        ['e3', 3, 'buffered', { n: 'e3' }],
        ['e4', 4, 'buffered', { n: 'e4' }],
      ]);
      expect((await store.unreviewed(A, 's1')).map((e) => e.id)).toEqual(['e1', 'e2']);
      await store.markReviewed(A, ['e1', 'e2', 'e3']);
      expect(await store.unreviewed(A, 's1')).toEqual([]);
      // A buffered episode is not marked reviewed: it has not left the buffer.
      expect((await store.buffer(A, 's1')).map((e) => e.reviewed)).toEqual([false, false]);
      const all = await store.evictAll(A, 's1');
      expect(all.map((e) => [e.id, e.state])).toEqual([
        ['e3', 'evicted'],
        ['e4', 'evicted'],
      ]);
      expect(await store.evictAll(A, 's1')).toEqual([]);
    });

    it('answers null for a session the tenant does not have, writing nothing', async () => {
      expect(await store.append(A, episode('x', 'nope'), 5)).toBeNull();
      expect(await store.append(B, episode('y', 's1'), 5)).toBeNull();
      expect(await store.buffer(A, 's1')).toEqual([]);
      expect(await store.buffer(B, 's1')).toEqual([]);
    });

    it('links episodes to a memory once; a buffered one stays buffered and leaves consolidated', async () => {
      await store.append(A, episode('r1', 's1', 'same', { importance: 0.9 }), 1);
      await store.append(A, episode('r2', 's1', 'same'), 1);
      expect((await store.repeats(A, 's1', 'same')).map((e) => [e.id, e.state, e.importance])).toEqual([
        ['r1', 'evicted', 0.9],
        ['r2', 'buffered', null],
      ]);
      const memory = { id: 'mem_x', reason: 'repetition' };
      const [first, second] = await Promise.all([
        store.link(A, 's1', ['r1', 'r2'], memory),
        store.link(A, 's1', ['r1', 'r2'], { id: 'mem_y', reason: 'repetition' }),
      ]);
      expect([first, second].sort()).toEqual([0, 2]);
      const linked = await store.repeats(A, 's1', 'same');
      const winner = linked[0]?.memory_id as string;
      expect(linked.map((e) => [e.state, e.memory_id, e.reviewed])).toEqual([
        ['consolidated', winner, true],
        ['buffered', winner, false],
      ]);
      const left = await store.evictAll(A, 's1');
      expect(left.map((e) => [e.id, e.state, e.reviewed])).toEqual([['r2', 'consolidated', true]]);
      expect((await store.forMemory(A, winner)).map((e) => e.id)).toEqual(['r1', 'r2']);
      expect(await store.forMemory(B, winner)).toEqual([]);
    });

    it('takes distinct seq numbers under concurrent appends', async () => {
      const ids = Array.from({ length: 8 }, (_, i) => `c${i}`);
      const results = await Promise.all(ids.map((id) => store.append(A, episode(id, 's1'), 3)));
      expect(results.map((r) => r?.episode.seq).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8,
      ]);
      const evicted = results.flatMap((r) => r?.evicted.map((e) => e.id) ?? []);
      expect(evicted).toHaveLength(5);
      expect(new Set(evicted).size).toBe(5);
      expect((await store.buffer(A, 's1')).map((e) => e.seq)).toEqual([6, 7, 8]);
    });
  });
}
