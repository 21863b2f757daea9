/** Reciprocal-rank-fusion constant: the usual 60 keeps one list's top hit from drowning the other list. */
export const RRF_K = 60;

export interface RankSignals {
  text_rank: number | null;
  vector_rank: number | null;
}

/** One ranked list of ids and how much it counts in fusion. */
export interface RankedList {
  ids: readonly string[];
  weight: number;
}

/**
 * Fuses ranked id lists by weighted reciprocal rank: score = Σ weight / (RRF_K + rank), ranks from 1.
 * Equal weights let a weak list pull good hits of a strong one down; each list's weight says how much
 * its ranking is worth, as `brain eval` measured it.
 */
export function reciprocalRankFusion(lists: readonly RankedList[]): Map<string, number> {
  const scores = new Map<string, number>();
  for (const { ids, weight } of lists) {
    if (weight <= 0) continue;
    ids.forEach((id, index) => {
      scores.set(id, (scores.get(id) ?? 0) + weight / (RRF_K + index + 1));
    });
  }
  return scores;
}

/** The best fused score possible: first in every list. */
export function maxFusedScore(lists: readonly RankedList[]): number {
  return lists.reduce((sum, l) => sum + (l.weight > 0 && l.ids.length > 0 ? l.weight / (RRF_K + 1) : 0), 0);
}

export interface RerankWeights {
  /** Days after which recency counts half. */
  halfLifeDays: number;
  recency: number;
  importance: number;
  access: number;
}

export const DEFAULT_RERANK_WEIGHTS: RerankWeights = {
  halfLifeDays: 30,
  recency: 0.15,
  importance: 0.15,
  access: 0.05,
};

/** Exponential recency decay in 0..1: 1 for now, 0.5 after one half-life. */
export function recencyScore(createdAt: string, now: Date, halfLifeDays: number): number {
  const ageDays = Math.max(0, (now.getTime() - Date.parse(createdAt)) / 86_400_000);
  return 2 ** (-ageDays / halfLifeDays);
}

/** Access frequency in 0..1, logarithmic so that a few accesses matter and hundreds saturate. */
export function accessScore(accessCount: number): number {
  return Math.min(1, Math.log1p(accessCount) / Math.log1p(100));
}

/**
 * The final score: relevance (RRF normalised by the best possible fused score) scaled by a boost from
 * recency, importance and access. Relevance dominates; the boost reorders near-ties and lifts memories
 * the user marked important.
 */
export function rerankScore(
  rrf: number,
  maxRrf: number,
  boost: { recency: number; importance: number; access: number },
  weights: RerankWeights = DEFAULT_RERANK_WEIGHTS,
): number {
  const relevance = maxRrf > 0 ? rrf / maxRrf : 0;
  const base = 1 - weights.recency - weights.importance - weights.access;
  const factor =
    base +
    weights.recency * boost.recency +
    weights.importance * boost.importance +
    weights.access * boost.access;
  return relevance * factor;
}
