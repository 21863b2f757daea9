import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFixedClock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import type { MemoryStore } from '../../modules/memory/memory-store.js';
import { movesOf, planRebalance, type TierSettings } from '../../modules/memory/memory-tiers.js';
import { createTierService } from '../../modules/memory/tier-service.js';
import type { TierStore } from '../../modules/memory/tier-store.js';
import { newMemoryRow } from './memory-store-contract.js';

export interface TierStoreHarness {
  stores: { memories: MemoryStore; tiers: TierStore };
  close(): Promise<void>;
}

const A: RequestScope = { tenantId: 'tenant-a' };
const B: RequestScope = { tenantId: 'tenant-b' };
const NOW = '2026-06-01T12:00:00.000Z';
const DAY = 86_400_000;
const SETTINGS: TierSettings = {
  hotMax: 3,
  coldAfterDays: 30,
  promoteAfterAccesses: 2,
  halfLifeDays: 30,
  halfLives: {},
};

/**
 * The storage contract of tiers and decay, run by every driver against a real database through the tier
 * service with a fixed clock: capacity, protected types, cold after disuse, promotion, moves recorded
 * once even when two rebalances race, nothing lost to concurrent writers, tenants kept apart.
 */
export function runTierStoreContract(
  driver: string,
  open: () => Promise<TierStoreHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`TierStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: TierStoreHarness;
    let memories: MemoryStore;
    let clock: ReturnType<typeof createFixedClock>;
    const service = (settings: Partial<TierSettings> = {}) =>
      createTierService({
        tiers: h.stores.tiers,
        memories,
        settings: { ...SETTINGS, ...settings },
        clock,
        logger: silentLogger,
      });
    beforeEach(async () => {
      h = await open();
      memories = h.stores.memories;
      clock = createFixedClock(NOW);
    });
    afterEach(async () => {
      await h?.close();
    });

    async function seed(
      scope: RequestScope,
      rows: { content: string; importance?: number; type?: string; tags?: string[]; created_at?: string }[],
    ) {
      const written = await memories.insert(
        scope,
        rows.map((r) =>
          newMemoryRow(r.content, {
            importance: r.importance ?? 0.5,
            type: r.type ?? 'fact',
            tags: r.tags ?? [],
            created_at: r.created_at ?? NOW,
          }),
        ),
      );
      return written.map((w) => w.id);
    }
    const tierOf = async (scope: RequestScope, id: string) =>
      (await memories.get(scope, id, clock.now().toISOString()))?.storage_tier;

    it('keeps the hot tier within BRAIN_HOT_MAX by demoting the lowest scores, never a protected type, and records each move', async () => {
      const ids = await seed(A, [
        { content: 'alpha note', importance: 0.9 },
        { content: 'beta note', importance: 0.8 },
        { content: 'gamma note', importance: 0.1 },
        { content: 'delta note', importance: 0.7 },
        { content: 'epsilon note', importance: 0.2 },
        { content: 'prefers tea', importance: 0.05, type: 'user_preferences' },
      ]);
      const report = await service().rebalance();
      expect(report).toMatchObject({ tenants: 1, memories: 6, demoted: 3, promoted: 0, cooled: 0, hot: 3 });
      expect(report.rescored).toBe(6);
      const tiers = await Promise.all(ids.map((id) => tierOf(A, id)));
      // Kept: the protected preference, then the two best of the rest (0.9, 0.8).
      expect(tiers).toEqual(['hot', 'hot', 'warm', 'warm', 'warm', 'hot']);
      const moves = await h.stores.tiers.moves(A, ids[2] as string);
      expect(moves).toHaveLength(1);
      expect(moves[0]).toMatchObject({ from: 'hot', to: 'warm', at: NOW });
      expect(moves[0]?.reason).toMatch(/BRAIN_HOT_MAX 3/);
      // The same clock again: nothing to do (idempotent), and no score to rewrite.
      const again = await service().rebalance();
      expect(again).toMatchObject({ demoted: 0, promoted: 0, cooled: 0, rescored: 0, stale: 0 });
      expect(await h.stores.tiers.moves(A, ids[2] as string)).toHaveLength(1);
      const explained = await service().explain(A, ids[2] as string);
      expect(explained).toMatchObject({ tier: 'warm', protected: false });
      expect(explained.moves).toHaveLength(1);
      expect(explained.score).toBeCloseTo(0.4 * 0.1 + 0.35 * 1, 6);
    });

    it('moves warm memories unused BRAIN_COLD_AFTER_DAYS to cold, which recall leaves out unless include_cold', async () => {
      const [keep, old] = await seed(A, [
        { content: 'the garden gate is green', importance: 0.9 },
        { content: 'the garden shed is red', importance: 0.1 },
      ]);
      await service({ hotMax: 1 }).rebalance();
      expect(await tierOf(A, old as string)).toBe('warm');
      clock.set(new Date(Date.parse(NOW) + 31 * DAY));
      const report = await service({ hotMax: 1 }).rebalance();
      expect(report.cooled).toBe(1);
      expect(await tierOf(A, old as string)).toBe('cold');
      expect(await tierOf(A, keep as string)).toBe('hot');
      const query = (include_cold: boolean) =>
        memories.candidates(A, {
          text: 'garden shed',
          embedding: null,
          embedding_model: null,
          filter: { include_cold },
          limit: 10,
          now: clock.now().toISOString(),
        });
      expect((await query(false)).text.map((t) => t.id)).not.toContain(old);
      expect((await query(true)).text.map((t) => t.id)).toContain(old);
    });

    it('promotes a memory recalled BRAIN_PROMOTE_AFTER_ACCESSES times since its move, demoting the weakest hot one', async () => {
      const ids = await seed(A, [
        { content: 'one', importance: 0.6 },
        { content: 'two', importance: 0.5 },
        { content: 'three', importance: 0.4 },
        { content: 'four', importance: 0.3 },
      ]);
      await service().rebalance();
      expect(await tierOf(A, ids[3] as string)).toBe('warm');
      clock.advance(60_000);
      // Recalled twice: touches are batched by the drivers, and a rebalance reads them all.
      await memories.touch(A, [ids[3] as string], clock.now().toISOString());
      await memories.touch(A, [ids[3] as string], clock.now().toISOString());
      const report = await service().rebalance();
      expect(report).toMatchObject({ promoted: 1, demoted: 1 });
      expect(await tierOf(A, ids[3] as string)).toBe('hot');
      expect(await tierOf(A, ids[2] as string)).toBe('warm');
      const moves = await h.stores.tiers.moves(A, ids[3] as string);
      expect(moves.map((m) => `${m.from}>${m.to}`)).toEqual(['hot>warm', 'warm>hot']);
      expect(moves[1]?.reason).toMatch(/recalled 2 times/);
      // Its count restarts at the promotion: the next rebalance does not promote it again.
      expect(await service().rebalance()).toMatchObject({ promoted: 0, demoted: 0 });
    });

    it('moves a memory once when two rebalances race, and loses no write made meanwhile', async () => {
      await seed(
        A,
        Array.from({ length: 40 }, (_, i) => ({ content: `seed ${i}`, importance: (i % 10) / 10 })),
      );
      const writers = (async () => {
        const ids: string[] = [];
        for (let i = 0; i < 20; i++) ids.push(...(await seed(A, [{ content: `during ${i}` }])));
        return ids;
      })();
      const [one, two, written] = await Promise.all([
        service({ hotMax: 10 }).rebalance(),
        service({ hotMax: 10 }).rebalance(),
        writers,
      ]);
      expect(one.demoted + two.demoted).toBeGreaterThanOrEqual(30);
      const all = await memories.list(
        A,
        { limit: 200, offset: 0, sort: 'created_at', order: 'asc', include_cold: true },
        clock.now().toISOString(),
      );
      expect(all.total).toBe(60);
      for (const id of written) expect(all.items.some((m) => m.id === id)).toBe(true);
      // Every memory's recorded moves chain: each starts where the one before ended, the first at hot.
      for (const m of all.items) {
        const moves = await h.stores.tiers.moves(A, m.id);
        let at = 'hot';
        for (const move of moves) {
          expect(move.from).toBe(at);
          at = move.to;
        }
        expect(at).toBe(m.storage_tier);
      }
      // A third pass settles what the writers added; a fourth has nothing left to do.
      await service({ hotMax: 10 }).rebalance();
      const settled = await service({ hotMax: 10 }).rebalance();
      expect(settled).toMatchObject({ promoted: 0, demoted: 0, cooled: 0 });
      expect(settled.hot).toBe(10);
    });

    it('applies only the moves still due: one planned from a tier it has left, or of a forgotten memory, is stale', async () => {
      const [moved, left, forgotten] = await seed(A, [
        { content: 'moved' },
        { content: 'left' },
        { content: 'gone' },
      ]);
      const move = (id: string, from: 'hot' | 'warm') => ({
        id,
        from,
        to: 'warm' as const,
        reason: 'test',
        score: 0.2,
      });
      const refs = new Map((await h.stores.tiers.rows(A.tenantId, NOW)).map((r) => [r.id, r.ref]));
      const change = (id: string, score: number | null) => ({
        id,
        ref: refs.get(id) as number,
        score,
        move: move(id, 'hot'),
      });
      // `left` went warm after the plan below was made from its hot row; `forgotten` was forgotten.
      await h.stores.tiers.apply(A.tenantId, [change(left as string, null)], NOW);
      await memories.forget(A, { id: forgotten as string }, { hard: false, now: NOW });
      const applied = await h.stores.tiers.apply(
        A.tenantId,
        [change(moved as string, 0.25), change(left as string, null), change(forgotten as string, null)],
        NOW,
      );
      expect(applied.moved.map((m) => m.id)).toEqual([moved]);
      expect(applied.stale).toBe(2);
      expect(applied.rescored).toBe(1);
      expect(await tierOf(A, moved as string)).toBe('warm');
      expect((await h.stores.tiers.moves(A, moved as string)).map((m) => [m.from, m.to, m.score])).toEqual([
        ['hot', 'warm', 0.2],
      ]);
      expect(await h.stores.tiers.moves(A, left as string)).toHaveLength(1);
      expect(await h.stores.tiers.moves(A, forgotten as string)).toEqual([]);
    });

    it('does not demote a memory pinned or made protected after the plan read it (stale); the next rebalance promotes it', async () => {
      const [keep, pin, crit, aging, plain] = (await seed(A, [
        { content: 'keep', importance: 0.9 },
        { content: 'pin', importance: 0.2 },
        { content: 'crit', importance: 0.1 },
        {
          content: 'aging',
          importance: 0.05,
          created_at: new Date(Date.parse(NOW) - 20 * DAY).toISOString(),
        },
        { content: 'plain', importance: 0.15 },
      ])) as [string, string, string, string, string];
      await service({ hotMax: 4 }).rebalance();
      expect(await tierOf(A, aging)).toBe('warm');
      // 11 days on, `aging` is unused 31 days (past BRAIN_COLD_AFTER_DAYS 30); the others only 11.
      clock.set(new Date(Date.parse(NOW) + 11 * DAY));
      const now = clock.now().toISOString();
      const plan = planRebalance(await h.stores.tiers.rows(A.tenantId, now), clock.now(), {
        ...SETTINGS,
        hotMax: 1,
      });
      const planned = (p: typeof plan) => movesOf(p.changes).map((m) => `${m.id}:${m.from}>${m.to}`);
      expect(planned(plan).sort()).toEqual(
        [`${pin}:hot>warm`, `${crit}:hot>warm`, `${aging}:warm>cold`, `${plain}:hot>warm`].sort(),
      );
      // Meanwhile: one pinned, one made system_critical, one made a user preference (after the plan).
      await memories.update(A, { id: pin }, { tags: ['pinned'] }, now);
      await memories.update(A, { id: crit }, { type: 'system_critical' }, now);
      await memories.update(A, { id: aging }, { type: 'user_preferences' }, now);
      const applied = await h.stores.tiers.apply(A.tenantId, plan.changes, now);
      expect(applied.moved.map((m) => m.id)).toEqual([plain]);
      expect(applied.stale).toBe(3);
      expect(await Promise.all([keep, pin, crit, aging, plain].map((id) => tierOf(A, id)))).toEqual([
        'hot',
        'hot',
        'hot',
        'warm',
        'warm',
      ]);
      expect(await h.stores.tiers.moves(A, pin)).toEqual([]);
      expect(await h.stores.tiers.moves(A, aging)).toHaveLength(1);
      // The next rebalance brings the protected warm one back to hot, and the three protected take
      // BRAIN_HOT_MAX's one place: `keep` goes warm. Then nothing is left to do.
      const next = await service({ hotMax: 1 }).rebalance();
      expect(next).toMatchObject({ promoted: 1, demoted: 1, stale: 0, hot: 3, over_capacity: 1 });
      expect(await tierOf(A, aging)).toBe('hot');
      expect(await tierOf(A, keep)).toBe('warm');
      const back = await h.stores.tiers.moves(A, aging);
      expect(back.map((m) => [m.from, m.to, m.reason])).toEqual([
        ['hot', 'warm', expect.stringMatching(/BRAIN_HOT_MAX 4/)],
        ['warm', 'hot', 'protected type user_preferences: kept hot, never demoted'],
      ]);
      expect(await service({ hotMax: 1 }).rebalance()).toMatchObject({ promoted: 0, demoted: 0, cooled: 0 });
    });

    it("keeps tenants apart: one tenant's capacity, moves and rows are its own", async () => {
      const [a1] = await seed(A, [
        { content: 'a one', importance: 0.1 },
        { content: 'a two', importance: 0.9 },
      ]);
      await seed(B, [{ content: 'b one', importance: 0.1 }]);
      const report = await service({ hotMax: 1 }).rebalance();
      expect(report).toMatchObject({ tenants: 2, demoted: 1 });
      expect(await h.stores.tiers.moves(A, a1 as string)).toHaveLength(1);
      expect(await h.stores.tiers.moves(B, a1 as string)).toEqual([]);
      expect((await h.stores.tiers.rows(B.tenantId, NOW)).map((r) => r.id)).not.toContain(a1);
      const only = await service({ hotMax: 1 }).rebalance({ tenant: B.tenantId });
      expect(only.tenants).toBe(1);
      expect(await h.stores.tiers.tierCounts(NOW)).toEqual({
        hot: 2,
        warm: 1,
        cold: 0,
        tenants: 2,
        fullest: 1,
      });
      await seed(B, [{ content: 'b two' }, { content: 'b three' }]);
      // New memories are hot until the next rebalance: tenant b holds three, over its capacity of one.
      expect(await h.stores.tiers.tierCounts(NOW)).toEqual({
        hot: 4,
        warm: 1,
        cold: 0,
        tenants: 2,
        fullest: 3,
      });
      await expect(service().rebalance({ tenant: 'no spaces' })).rejects.toThrow(/tenant/);
    });

    it('lists the tenants holding a memory not forgotten, in order, whatever was forgotten before them', async () => {
      const C = { tenantId: 'c-tenant' };
      const [gone] = await seed(C, [{ content: 'c only' }]);
      await memories.forget(C, { id: gone as string }, { hard: false, now: NOW });
      const [firstB] = await seed(B, [{ content: 'b first' }, { content: 'b second' }]);
      await memories.forget(B, { id: firstB as string }, { hard: false, now: NOW });
      await seed(A, [{ content: 'a one' }]);
      expect(await h.stores.tiers.tenants()).toEqual([A.tenantId, B.tenantId].sort());
    });

    it("a hard forget takes the memory's moves with it", async () => {
      const [low] = await seed(A, [
        { content: 'low', importance: 0 },
        { content: 'high', importance: 1 },
      ]);
      await service({ hotMax: 1 }).rebalance();
      expect(await h.stores.tiers.moves(A, low as string)).toHaveLength(1);
      await memories.forget(A, { id: low as string }, { hard: true, now: NOW });
      expect(await h.stores.tiers.moves(A, low as string)).toEqual([]);
    });
  });
}
