import { describe, expect, it } from 'vitest';
import { parseHalfLives } from '../../config/config-schema.js';
import {
  bestOf,
  movesOf,
  planRebalance,
  type RebalancePlan,
  SCORE_WRITE_STEP,
  type ScoreInput,
  scoreMemory,
  type TierRow,
  type TierSettings,
} from './memory-tiers.js';

const NOW = new Date('2026-06-01T00:00:00.000Z');
const DAY = 86_400_000;
const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY).toISOString();
const SETTINGS: TierSettings = {
  hotMax: 2,
  coldAfterDays: 30,
  promoteAfterAccesses: 3,
  halfLifeDays: 30,
  halfLives: { event: 7 },
};

let refs = 0;

/** A plan's new scores and its moves, each in the order of the rows. */
const scoresOf = (plan: RebalancePlan) =>
  plan.changes.filter((c) => c.score !== null).map((c) => ({ id: c.id, score: c.score }));
const movesIn = (plan: RebalancePlan) => movesOf(plan.changes);

/** The rows as they stand once `plan` is applied: its scores written, its moves made. */
function appliedTo(rows: TierRow[], plan: RebalancePlan): TierRow[] {
  const scores = new Map(scoresOf(plan).map((s) => [s.id, s.score]));
  const tiers = new Map(movesIn(plan).map((m) => [m.id, m.to]));
  return rows.map((r) => ({
    ...r,
    memory_score: scores.get(r.id) ?? r.memory_score,
    storage_tier: tiers.get(r.id) ?? r.storage_tier,
    tier_access_count: tiers.has(r.id) ? r.access_count : r.tier_access_count,
  }));
}

/** A row as a store reads it, with the tags it is pinned by (what scoreMemory is given). */
function row(id: string, extra: Partial<TierRow & ScoreInput> = {}): TierRow & ScoreInput {
  const tags = extra.tags ?? [];
  const base = {
    id,
    ref: ++refs,
    type: 'fact',
    tags,
    pinned: tags.includes('pinned'),
    importance: 0.5,
    access_count: 0,
    created_at: NOW.toISOString(),
    accessed_at: null,
    storage_tier: 'hot' as const,
    memory_score: 0.5,
    tier_access_count: 0,
    ...extra,
  };
  return { ...base, last_used_at: base.accessed_at ?? base.created_at };
}

describe('memory_score', () => {
  it('halves the recency part every half-life of the type, counted from the last use', () => {
    const fact = scoreMemory(row('f', { created_at: daysAgo(30) }), NOW, SETTINGS);
    expect(fact.recency).toBeCloseTo(0.5, 9);
    expect(fact.half_life_days).toBe(30);
    const event = scoreMemory(row('e', { type: 'event', created_at: daysAgo(14) }), NOW, SETTINGS);
    expect(event.recency).toBeCloseTo(0.25, 9);
    // A recall yesterday counts, not the write 60 days ago.
    const used = scoreMemory(row('u', { created_at: daysAgo(60), accessed_at: daysAgo(0) }), NOW, SETTINGS);
    expect(used.recency).toBe(1);
    expect(used.last_used_at).toBe(NOW.toISOString());
  });

  it('weighs importance, recency and access frequency; a pinned memory scores 1', () => {
    const s = scoreMemory(row('s', { importance: 1, access_count: 100 }), NOW, SETTINGS);
    expect(s.score).toBeCloseTo(1, 6);
    const none = scoreMemory(row('n', { importance: 0, created_at: daysAgo(3000) }), NOW, SETTINGS);
    expect(none.score).toBeLessThan(0.001);
    const pinned = scoreMemory(row('p', { importance: 0, tags: ['pinned'] }), NOW, SETTINGS);
    expect(pinned).toMatchObject({ score: 1, pinned: true });
  });
});

describe('planRebalance', () => {
  it('scores every memory as scoreMemory does (what explain shows), pinned, protected and aged alike', () => {
    const rows = Array.from({ length: 300 }, (_, i) =>
      row(`m${i}`, {
        type: ['fact', 'event', 'note', 'user_preferences'][i % 4] as string,
        tags: i % 7 === 0 ? ['x', 'pinned'] : i % 5 === 0 ? ['x'] : [],
        importance: (i % 11) / 10,
        access_count: i % 13,
        created_at: daysAgo(i),
        accessed_at: i % 3 === 0 ? daysAgo(i / 3) : null,
        memory_score: -1,
      }),
    );
    const plan = planRebalance(rows, NOW, SETTINGS);
    expect(scoresOf(plan)).toEqual(
      rows.map((r) => ({ id: r.id, score: scoreMemory(r, NOW, SETTINGS).score })),
    );
  });

  it('demotes the lowest scores past BRAIN_HOT_MAX, to cold when also unused, and never a protected type', () => {
    const rows = [
      row('a', { importance: 0.9 }),
      row('b', { importance: 0.8 }),
      row('c', { importance: 0.1 }),
      row('d', { importance: 0.2, created_at: daysAgo(40) }),
      row('p', { importance: 0, type: 'system_critical', created_at: daysAgo(400) }),
    ];
    const plan = planRebalance(rows, NOW, { ...SETTINGS, hotMax: 3 });
    expect(
      movesIn(plan)
        .map((m) => `${m.id}:${m.from}>${m.to}`)
        .sort(),
    ).toEqual(['c:hot>warm', 'd:hot>cold']);
    expect(plan.hot).toBe(3);
  });

  it('moves warm memories unused BRAIN_COLD_AFTER_DAYS to cold, but not a protected or pinned one', () => {
    const rows = [
      row('w', { storage_tier: 'warm', created_at: daysAgo(31) }),
      row('fresh', { storage_tier: 'warm', created_at: daysAgo(29) }),
      row('pref', { storage_tier: 'warm', type: 'user_preferences', created_at: daysAgo(300) }),
      row('pin', { storage_tier: 'warm', tags: ['pinned'], created_at: daysAgo(300) }),
    ];
    const plan = planRebalance(rows, NOW, { ...SETTINGS, hotMax: 100 });
    // The protected and the pinned go back to hot instead (next test).
    expect(movesIn(plan).map((m) => `${m.id}:${m.to}`)).toEqual(['w:cold', 'pref:hot', 'pin:hot']);
  });

  it('promotes a pinned or protected memory from warm or cold to hot, taking its place in BRAIN_HOT_MAX; then nothing moves', () => {
    const rows = [
      row('h1', { importance: 0.9 }),
      row('h2', { importance: 0.2 }),
      row('h3', { importance: 0.1 }),
      // Never recalled since its move: only the pin brings it back.
      row('pin-warm', { storage_tier: 'warm', tags: ['pinned'], importance: 0, created_at: daysAgo(10) }),
      row('crit-cold', {
        storage_tier: 'cold',
        type: 'system_critical',
        importance: 0,
        created_at: daysAgo(400),
      }),
      row('pref-cold', {
        storage_tier: 'cold',
        type: 'user_preferences',
        importance: 0,
        created_at: daysAgo(400),
      }),
    ];
    const settings = { ...SETTINGS, hotMax: 4 };
    const first = planRebalance(rows, NOW, settings);
    expect(movesIn(first).map((m) => [m.id, `${m.from}>${m.to}`, m.reason])).toEqual([
      // The three protected take three of the four places: one is left for the best of the rest.
      ['h2', 'hot>warm', expect.stringMatching(/BRAIN_HOT_MAX 4.*1 best/)],
      ['h3', 'hot>warm', expect.stringMatching(/BRAIN_HOT_MAX 4/)],
      ['pin-warm', 'warm>hot', 'pinned (tag pinned): kept hot, never demoted'],
      ['crit-cold', 'cold>hot', 'protected type system_critical: kept hot, never demoted'],
      ['pref-cold', 'cold>hot', 'protected type user_preferences: kept hot, never demoted'],
    ]);
    expect(first.hot).toBe(4);
    // The protected alone past capacity: all of them hot all the same, and nothing else.
    const tight = planRebalance(rows, NOW, { ...SETTINGS, hotMax: 2 });
    expect(
      movesIn(tight)
        .filter((m) => m.to === 'hot')
        .map((m) => m.id),
    ).toEqual(['pin-warm', 'crit-cold', 'pref-cold']);
    expect(tight.hot).toBe(3);
    // Applied, the next plan at the same time moves nothing (idempotent).
    const applied = appliedTo(rows, first);
    expect(planRebalance(applied, NOW, settings)).toMatchObject({ changes: [], hot: 4 });
  });

  it('promotes after BRAIN_PROMOTE_AFTER_ACCESSES recalls since the last move, when the score earns a place', () => {
    const rows = [
      row('h1', { importance: 0.9 }),
      row('h2', { importance: 0.1 }),
      row('cold', {
        storage_tier: 'cold',
        importance: 0.5,
        access_count: 8,
        tier_access_count: 5,
        accessed_at: NOW.toISOString(),
      }),
      row('warm-2', { storage_tier: 'warm', importance: 1, access_count: 2, accessed_at: NOW.toISOString() }),
    ];
    const plan = planRebalance(rows, NOW, SETTINGS);
    expect(
      movesIn(plan)
        .map((m) => `${m.id}:${m.from}>${m.to}`)
        .sort(),
    ).toEqual(['cold:cold>hot', 'h2:hot>warm']);
  });

  it('is idempotent: the plan applied, planning again at the same time moves and rescores nothing', () => {
    const rows = Array.from({ length: 50 }, (_, i) =>
      row(`m${i}`, {
        importance: ((i * 37) % 100) / 100,
        created_at: daysAgo(i),
        storage_tier: i % 3 === 0 ? 'warm' : 'hot',
        access_count: i % 7,
      }),
    );
    const first = planRebalance(rows, NOW, { ...SETTINGS, hotMax: 10 });
    const applied = appliedTo(rows, first);
    const second = planRebalance(applied, NOW, { ...SETTINGS, hotMax: 10 });
    expect(movesIn(first).length).toBeGreaterThan(0);
    expect(second).toMatchObject({ changes: [], hot: 10 });
  });
});

describe('BRAIN_DECAY_HALF_LIVES', () => {
  it('reads type=days pairs and refuses anything else, naming the part', () => {
    expect(parseHalfLives('event=14, fact=90.5,')).toEqual({ event: 14, fact: 90.5 });
    expect(parseHalfLives('')).toEqual({});
    expect(() => parseHalfLives('event=0')).toThrow(/"event=0" is not type=days/);
    expect(() => parseHalfLives('Event=3')).toThrow(/"Event=3"/);
    expect(() => parseHalfLives('fact:30')).toThrow(/"fact:30"/);
  });
});

describe('bestOf', () => {
  it('keeps the k best in order, as a full sort would, ties included', () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 16_807) % 2_147_483_647;
      return seed / 2_147_483_647;
    };
    // Many equal scores: the id decides between them, as the plan's order does.
    const items = Array.from({ length: 5000 }, (_, i) => ({ score: Math.floor(rand() * 50), id: `m${i}` }));
    const order = (a: (typeof items)[0], b: (typeof items)[0]) =>
      b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const sorted = [...items].sort(order);
    for (const k of [1, 2, 37, 1000, 4999, 5000, 6000])
      expect(bestOf(items, k, order)).toEqual(sorted.slice(0, k));
    expect(bestOf(items, 0, order)).toEqual([]);
    expect(bestOf([], 3, order)).toEqual([]);
  });
});

describe('the plan as changes', () => {
  it('gives each memory one change with its ref: its new score, its move, or both', () => {
    const rows = [
      row('a', { importance: 0.9 }),
      row('b', { importance: 0.8, memory_score: 0.1 }),
      row('c', {
        importance: 0.1,
        memory_score: scoreMemory(row('c', { importance: 0.1 }), NOW, SETTINGS).score,
      }),
      row('d', { importance: 0.2, created_at: daysAgo(40) }),
      row('w', { storage_tier: 'warm', importance: 0.2, memory_score: 0.2, created_at: daysAgo(40) }),
    ];
    // c's stored score is its score: it is demoted without one; d is re-scored and demoted; a and b
    // only re-scored; w re-scored and cooled.
    const plan = planRebalance(rows, NOW, SETTINGS);
    const newScore = (r: TierRow & ScoreInput) => {
      const now = scoreMemory(r, NOW, SETTINGS).score;
      return Math.abs(now - r.memory_score) >= SCORE_WRITE_STEP ? now : null;
    };
    type Row = TierRow & ScoreInput;
    const [a, b, c, d, w] = rows as [Row, Row, Row, Row, Row];
    expect(
      plan.changes.map((x) => [
        x.id,
        x.ref,
        x.score,
        x.move && `${x.move.from}>${x.move.to}:${x.move.score}`,
      ]),
    ).toEqual([
      ['a', a.ref, newScore(a), null],
      ['b', b.ref, newScore(b), null],
      ['c', c.ref, null, `hot>warm:${scoreMemory(c, NOW, SETTINGS).score}`],
      ['d', d.ref, newScore(d), `hot>cold:${newScore(d)}`],
      ['w', w.ref, newScore(w), `warm>cold:${newScore(w)}`],
    ]);
    expect([a, b, d, w].every((r) => newScore(r) !== null)).toBe(true);
  });

  it('plans only the scores with moves: false (the decay pass), and counts the hot memories as they are', () => {
    const rows = [row('a'), row('b'), row('c', { importance: 0.1 }), row('w', { storage_tier: 'warm' })];
    const plan = planRebalance(rows, NOW, SETTINGS, { moves: false });
    expect(movesIn(plan)).toEqual([]);
    expect(plan.hot).toBe(3);
    expect(plan.changes.map((c) => [c.id, c.score])).toEqual(
      rows
        .map((r) => [r.id, scoreMemory(r, NOW, SETTINGS).score])
        .filter(([, sc], i) => {
          return Math.abs((sc as number) - (rows[i] as TierRow).memory_score) >= SCORE_WRITE_STEP;
        }),
    );
    expect(plan.changes.length).toBeGreaterThan(0);
    expect(movesIn(planRebalance(rows, NOW, SETTINGS)).length).toBeGreaterThan(0);
  });
});
