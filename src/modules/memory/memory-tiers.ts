import { accessScore } from '../search/fuse-scores.js';
import type { StorageTier } from './memory-types.js';

/**
 * Tiers and decay: every memory's `memory_score` (importance, access frequency, recency with a half-life
 * per type, pins) and the rebalance plan that keeps each tenant's hot tier within its capacity. Pure:
 * the drivers read the rows and apply the plan; the clock is an argument.
 */

/** Types the rebalance never demotes: what the assistant must always have at hand. */
export const PROTECTED_TYPES: readonly string[] = ['user_preferences', 'system_critical'];
/** A memory with this tag is pinned: the highest score, never demoted. */
export const PIN_TAG = 'pinned';

/** The weights of the score's parts; they add up to 1, so a score is in 0..1. */
export const SCORE_WEIGHTS = { importance: 0.4, recency: 0.35, access: 0.25 } as const;

export interface TierSettings {
  /** Hot memories a tenant keeps at most (BRAIN_HOT_MAX). */
  hotMax: number;
  /** A warm memory unused this long goes cold (BRAIN_COLD_AFTER_DAYS). */
  coldAfterDays: number;
  /** Recalls since its last move that promote a warm or cold memory to hot (BRAIN_PROMOTE_AFTER_ACCESSES). */
  promoteAfterAccesses: number;
  /** The recency half-life of a type without its own (BRAIN_DECAY_HALF_LIFE_DAYS). */
  halfLifeDays: number;
  /** Half-lives by type (BRAIN_DECAY_HALF_LIVES). */
  halfLives: Readonly<Record<string, number>>;
}

/** What a memory's score is computed from (a stored memory has all of it). */
export interface ScoreInput {
  type: string;
  tags: readonly string[];
  importance: number;
  access_count: number;
  created_at: string;
  accessed_at: string | null;
}

/** What the rebalance reads of each live memory. */
export interface TierRow {
  id: string;
  /** The store's handle of the row (its rowid), passed back with the plan's change of it. */
  ref: number;
  type: string;
  /** Tagged PIN_TAG (the rest of its tags play no part). */
  pinned: boolean;
  importance: number;
  access_count: number;
  created_at: string;
  accessed_at: string | null;
  storage_tier: StorageTier;
  memory_score: number;
  /** access_count when the memory last changed tier (0 before its first move). */
  tier_access_count: number;
}

export interface ScoreParts {
  score: number;
  importance: number;
  recency: number;
  access: number;
  pinned: boolean;
  /** The half-life that applied, in days. */
  half_life_days: number;
  /** When the memory was last used (recalled, else written): what recency counts from. */
  last_used_at: string;
}

export interface TierMove {
  id: string;
  from: StorageTier;
  to: StorageTier;
  reason: string;
  score: number;
}

export interface RebalancePlan {
  /** New scores of the memories whose score changed. */
  scores: { id: string; score: number }[];
  moves: TierMove[];
  /** The same, one change per memory: what a store applies. */
  changes: PlanChange[];
  /** Hot memories after the plan, and the capacity. */
  hot: number;
  hotMax: number;
}

const DAY_MS = 86_400_000;
/** Scores are computed rounded to this. */
const SCORE_STEP = 1e-6;
/**
 * A stored score is rewritten only once it is this far off: recency drifts a little between any two
 * runs, and rewriting every row each time (100,000 rows every 15 minutes) costs far more than it tells.
 * Plans rank by the scores computed at `now`, never by the stored ones; `memory_score` as stored (list
 * sort, exports) is within this of the exact score as of the last rebalance or decay.
 */
export const SCORE_WRITE_STEP = 0.01;

export function halfLifeOf(type: string, settings: TierSettings): number {
  return settings.halfLives[type] ?? settings.halfLifeDays;
}

/** Recency at `nowMs` of a memory last used at `lastUsedMs`: halves every `halfLifeDays`. */
function recencyAt(lastUsedMs: number, nowMs: number, halfLifeDays: number): number {
  return 2 ** (-Math.max(0, (nowMs - lastUsedMs) / DAY_MS) / halfLifeDays);
}

/** The score from its parts: the weighted sum rounded to SCORE_STEP, or 1 when pinned. */
function scoreFrom(importance: number, recency: number, access: number, pinned: boolean): number {
  if (pinned) return 1;
  const weighted =
    SCORE_WEIGHTS.importance * importance + SCORE_WEIGHTS.recency * recency + SCORE_WEIGHTS.access * access;
  return Math.round(weighted / SCORE_STEP) * SCORE_STEP;
}

/** The score of one memory at `now`, with its parts (what `brain memory explain` shows). */
export function scoreMemory(row: ScoreInput, now: Date, settings: TierSettings): ScoreParts {
  const lastUsed = row.accessed_at ?? row.created_at;
  const halfLife = halfLifeOf(row.type, settings);
  const recency = recencyAt(Date.parse(lastUsed), now.getTime(), halfLife);
  const access = accessScore(row.access_count);
  const importance = Math.min(1, Math.max(0, row.importance));
  const pinned = row.tags.includes(PIN_TAG);
  const score = scoreFrom(importance, recency, access, pinned);
  return { score, importance, recency, access, pinned, half_life_days: halfLife, last_used_at: lastUsed };
}

/**
 * The distinct reasons of a plan's moves, each numbered once (from 0) as `place` first meets it: a
 * store sends each once and a move its number. Every demotion of a plan has the same reason, so sent
 * for each move they were most of a 98,000-move plan's bytes.
 */
export function reasonPlaces(): { reasons: string[]; place: (reason: string) => number } {
  const reasons: string[] = [];
  const places = new Map<string, number>();
  return {
    reasons,
    place(reason) {
      let at = places.get(reason);
      if (at === undefined) {
        at = reasons.push(reason) - 1;
        places.set(reason, at);
      }
      return at;
    },
  };
}

/** One memory's part of a plan: its new score (null: unchanged) and its move (null: none). */
export interface PlanChange {
  id: string;
  /** Its row's TierRow.ref. */
  ref: number;
  score: number | null;
  move: TierMove | null;
}

/** The moves of a plan's changes, in their order (a loop: flatMap's array per change cost ~10% of a plan). */
export function movesOf(changes: readonly PlanChange[], keep?: (change: PlanChange) => boolean): TierMove[] {
  const moves: TierMove[] = [];
  for (const c of changes) if (c.move && (keep === undefined || keep(c))) moves.push(c.move);
  return moves;
}

/** Code-unit order (ids sort so); localeCompare cost ~40% of a 100,000-memory plan. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The `k` best of `items` in `order` (best first) in O(n log k): a heap of the best so far with its worst
 * on top turns most items away with one comparison. Sorting every contender to keep the 2,000 best of
 * 100,000 was a third of a plan's time.
 */
export function bestOf<T>(items: readonly T[], k: number, order: (a: T, b: T) => number): T[] {
  const heap: T[] = [];
  if (k <= 0) return heap;
  const after = (i: number, j: number) => order(heap[i] as T, heap[j] as T) > 0;
  const swap = (i: number, j: number) => {
    const t = heap[i] as T;
    heap[i] = heap[j] as T;
    heap[j] = t;
  };
  for (const item of items) {
    if (heap.length < k) {
      heap.push(item);
      for (let i = heap.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!after(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    } else if (order(item, heap[0] as T) < 0) {
      heap[0] = item;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        let worst = i;
        if (l < heap.length && after(l, worst)) worst = l;
        if (l + 1 < heap.length && after(l + 1, worst)) worst = l + 1;
        if (worst === i) break;
        swap(i, worst);
        i = worst;
      }
    }
  }
  return heap.sort(order);
}

/** A memory as the plan sees it: its score at `now` and when it was last used. */
interface Scored {
  row: TierRow;
  /** Its change, once it has one. */
  change: PlanChange | null;
  score: number;
  lastUsedMs: number;
  /** Unused `coldAfterDays`. */
  unused: boolean;
  /** Of a protected type, or pinned: never demoted. */
  guarded: boolean;
}

/**
 * The plan for one tenant's live memories at `now`:
 * 1. every memory is re-scored (decay);
 * 2. a warm or cold memory recalled `promoteAfterAccesses` times since its last move is a candidate for hot;
 * 3. the hot tier keeps its protected memories and, up to `hotMax`, the best-scoring of the other hot
 *    memories and the candidates; the hot memories left out go warm (cold when unused `coldAfterDays`);
 * 4. a warm memory unused `coldAfterDays` goes cold. Protected memories are never demoted.
 * Applying the plan and planning again at the same `now` gives an empty plan: a rebalance is idempotent.
 * With `moves: false` (the decay pass) only step 1 is planned.
 */
export function planRebalance(
  rows: readonly TierRow[],
  now: Date,
  settings: TierSettings,
  options: { moves?: boolean } = {},
): RebalancePlan {
  const nowMs = now.getTime();
  const coldBefore = nowMs - settings.coldAfterDays * DAY_MS;
  const scores: RebalancePlan['scores'] = [];
  const moves: TierMove[] = [];
  // scoreMemory's score without its parts, each time parsed once: scoring was half of a plan's time.
  const scored = rows.map((row): Scored => {
    const lastUsedMs = Date.parse(row.accessed_at ?? row.created_at);
    const score = scoreFrom(
      Math.min(1, Math.max(0, row.importance)),
      recencyAt(lastUsedMs, nowMs, halfLifeOf(row.type, settings)),
      accessScore(row.access_count),
      row.pinned,
    );
    let change: PlanChange | null = null;
    if (Math.abs(score - row.memory_score) >= SCORE_WRITE_STEP) {
      scores.push({ id: row.id, score });
      change = { id: row.id, ref: row.ref, score, move: null };
    }
    return {
      row,
      change,
      score,
      lastUsedMs,
      unused: lastUsedMs < coldBefore,
      guarded: row.pinned || PROTECTED_TYPES.includes(row.type),
    };
  });
  // Each memory's move joins its change (made here, in its row: matching the two by id afterwards cost
  // ~0.1 s of a 100,000-memory plan).
  const move = (s: Scored, m: TierMove) => {
    moves.push(m);
    if (s.change) s.change.move = m;
    else s.change = { id: s.row.id, ref: s.row.ref, score: null, move: m };
  };
  const changesOf = () => {
    const changes: PlanChange[] = [];
    for (const s of scored) if (s.change) changes.push(s.change);
    return changes;
  };
  if (options.moves === false) {
    const hot = rows.filter((r) => r.storage_tier === 'hot').length;
    return { scores, moves, changes: changesOf(), hot, hotMax: settings.hotMax };
  }

  const protectedHot = scored.filter((s) => s.row.storage_tier === 'hot' && s.guarded);
  const contenders = scored.filter(
    (s) =>
      !(s.row.storage_tier === 'hot' && s.guarded) &&
      (s.row.storage_tier === 'hot' ||
        s.row.access_count - s.row.tier_access_count >= settings.promoteAfterAccesses),
  );
  // Best first; ties keep what is hot, then the newer use, then the id (a stable plan).
  const room = Math.max(0, settings.hotMax - protectedHot.length);
  const kept = bestOf(
    contenders,
    room,
    (a, b) =>
      b.score - a.score ||
      Number(b.row.storage_tier === 'hot') - Number(a.row.storage_tier === 'hot') ||
      b.lastUsedMs - a.lastUsedMs ||
      cmp(a.row.id, b.row.id),
  );
  const staying = new Set(kept.map((s) => s.row.id));
  for (const s of kept) {
    if (s.row.storage_tier === 'hot') continue;
    const since = s.row.access_count - s.row.tier_access_count;
    move(s, {
      id: s.row.id,
      from: s.row.storage_tier,
      to: 'hot',
      reason: `recalled ${since} times since its last move (BRAIN_PROMOTE_AFTER_ACCESSES ${settings.promoteAfterAccesses})`,
      score: s.score,
    });
  }
  // One reason for every demotion of the plan (each move keeps its own score beside it).
  const overCapacity = `hot tier over capacity (BRAIN_HOT_MAX ${settings.hotMax}): not among the ${room} best scores kept`;
  const overCapacityUnused = `${overCapacity}, and unused ${settings.coldAfterDays} days`;
  for (const s of contenders) {
    if (s.row.storage_tier !== 'hot' || staying.has(s.row.id)) continue;
    move(s, {
      id: s.row.id,
      from: 'hot',
      to: s.unused ? 'cold' : 'warm',
      reason: s.unused ? overCapacityUnused : overCapacity,
      score: s.score,
    });
  }
  for (const s of scored) {
    if (s.row.storage_tier !== 'warm' || staying.has(s.row.id) || !s.unused || s.guarded) continue;
    const lastUsed = s.row.accessed_at ?? s.row.created_at;
    move(s, {
      id: s.row.id,
      from: 'warm',
      to: 'cold',
      reason: `unused since ${lastUsed.slice(0, 10)} (BRAIN_COLD_AFTER_DAYS ${settings.coldAfterDays})`,
      score: s.score,
    });
  }
  const hot = protectedHot.length + staying.size;
  return { scores, moves, changes: changesOf(), hot, hotMax: settings.hotMax };
}
