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
  /** Its last recall, else its write (`accessed_at ?? created_at`): what recency counts from. */
  last_used_at: string;
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
  /** One change per memory whose score or tier changes, in the order of the rows: what a store applies. */
  changes: PlanChange[];
  /** Hot memories after the plan, and the capacity. */
  hot: number;
  hotMax: number;
}

/** The reason of a pinned memory's promotion to hot. */
export const PINNED_REASON = `pinned (tag ${PIN_TAG}): kept hot, never demoted`;
/** The reason of a protected type's promotion to hot. */
export function protectedReason(type: string): string {
  return `protected type ${type}: kept hot, never demoted`;
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

/**
 * The plan for one tenant's live memories at `now`:
 * 1. every memory is re-scored (decay);
 * 2. a warm or cold memory recalled `promoteAfterAccesses` times since its last move is a candidate for hot;
 * 3. the hot tier keeps its protected memories (pinned, or of a PROTECTED_TYPES type), promoting those
 *    outside it, and, up to `hotMax` less the protected, the best-scoring of the other hot memories and
 *    the candidates; the hot memories left out go warm (cold when unused `coldAfterDays`);
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
  const n = rows.length;
  // Each memory's score at `now`, last use and change by its place in `rows`: an object per memory to
  // hold them, and the lists of those, were ~40% of a 100,000-memory plan (most of it collecting them).
  const score = new Float64Array(n);
  const lastUsed = new Float64Array(n);
  const change: (PlanChange | null)[] = new Array(n).fill(null);
  let hotNow = 0;
  for (let i = 0; i < n; i++) {
    const row = rows[i] as TierRow;
    // scoreMemory's score without its parts, each last use parsed once: scoring was half of a plan.
    const used = Date.parse(row.last_used_at);
    const s = scoreFrom(
      Math.min(1, Math.max(0, row.importance)),
      recencyAt(used, nowMs, halfLifeOf(row.type, settings)),
      accessScore(row.access_count),
      row.pinned,
    );
    score[i] = s;
    lastUsed[i] = used;
    if (Math.abs(s - row.memory_score) >= SCORE_WRITE_STEP)
      change[i] = { id: row.id, ref: row.ref, score: s, move: null };
    if (row.storage_tier === 'hot') hotNow++;
  }
  const changes = () => {
    const out: PlanChange[] = [];
    for (const c of change) if (c) out.push(c);
    return out;
  };
  if (options.moves === false) return { changes: changes(), hot: hotNow, hotMax: settings.hotMax };

  // Each memory's move joins its change (made here: matching the two by id afterwards cost ~0.1 s).
  const move = (i: number, to: StorageTier, reason: string) => {
    const row = rows[i] as TierRow;
    const m: TierMove = { id: row.id, from: row.storage_tier, to, reason, score: score[i] as number };
    const c = change[i];
    if (c) c.move = m;
    else change[i] = { id: row.id, ref: row.ref, score: null, move: m };
  };
  const guarded = (row: TierRow) => row.pinned || PROTECTED_TYPES.includes(row.type);
  let protectedHot = 0;
  const contenders: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = rows[i] as TierRow;
    const hot = row.storage_tier === 'hot';
    if (guarded(row)) {
      // Pinned or made protected while warm or cold (or demoted by a rebalance that read it before):
      // it goes back to hot, where it stays, and takes a place there as the protected already in hot do.
      protectedHot++;
      if (!hot) move(i, 'hot', row.pinned ? PINNED_REASON : protectedReason(row.type));
    } else if (hot || row.access_count - row.tier_access_count >= settings.promoteAfterAccesses)
      contenders.push(i);
  }
  const hotAt = (i: number) => ((rows[i] as TierRow).storage_tier === 'hot' ? 1 : 0);
  // Best first; ties keep what is hot, then the newer use, then the id (a stable plan).
  const room = Math.max(0, settings.hotMax - protectedHot);
  const kept = bestOf(
    contenders,
    room,
    (a, b) =>
      (score[b] as number) - (score[a] as number) ||
      hotAt(b) - hotAt(a) ||
      (lastUsed[b] as number) - (lastUsed[a] as number) ||
      cmp((rows[a] as TierRow).id, (rows[b] as TierRow).id),
  );
  const staying = new Uint8Array(n);
  for (const i of kept) {
    staying[i] = 1;
    const row = rows[i] as TierRow;
    if (row.storage_tier === 'hot') continue;
    const since = row.access_count - row.tier_access_count;
    move(
      i,
      'hot',
      `recalled ${since} times since its last move (BRAIN_PROMOTE_AFTER_ACCESSES ${settings.promoteAfterAccesses})`,
    );
  }
  // One reason for every demotion of the plan (each move keeps its own score beside it).
  const overCapacity = `hot tier over capacity (BRAIN_HOT_MAX ${settings.hotMax}): not among the ${room} best scores kept`;
  const overCapacityUnused = `${overCapacity}, and unused ${settings.coldAfterDays} days`;
  for (const i of contenders) {
    if ((rows[i] as TierRow).storage_tier !== 'hot' || staying[i]) continue;
    const unused = (lastUsed[i] as number) < coldBefore;
    move(i, unused ? 'cold' : 'warm', unused ? overCapacityUnused : overCapacity);
  }
  for (let i = 0; i < n; i++) {
    const row = rows[i] as TierRow;
    if (row.storage_tier !== 'warm' || staying[i] || (lastUsed[i] as number) >= coldBefore || guarded(row))
      continue;
    move(
      i,
      'cold',
      `unused since ${row.last_used_at.slice(0, 10)} (BRAIN_COLD_AFTER_DAYS ${settings.coldAfterDays})`,
    );
  }
  return { changes: changes(), hot: protectedHot + kept.length, hotMax: settings.hotMax };
}
