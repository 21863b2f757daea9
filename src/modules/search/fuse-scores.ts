/** A candidate's evidence: its full-text score (0 when text did not find it) and vector similarity. */
export interface Evidence {
  text: number;
  similarity: number | null;
}

/**
 * Relevance in 0..1 by score fusion: the full-text score relative to the query's best, plus the vector
 * similarity above the floor at the policy's weight, divided by the most the sum can reach. Rank fusion
 * (RRF) gave a weak vector list's ranks as much say as full text's and pulled good text hits down
 * (docs/QUALITY.md); scores keep how far ahead a hit is. A vector below the floor is no evidence: a
 * candidate with no text score and no vector above the floor scores 0 and is not returned.
 */
export function fuseScores(
  evidence: Evidence,
  bestText: number,
  vector: { weight: number; floor: number } | null,
): number {
  const text = bestText > 0 ? evidence.text / bestText : 0;
  if (!vector || vector.weight <= 0) return text;
  const above = evidence.similarity === null ? 0 : Math.max(0, evidence.similarity - vector.floor);
  return (text + vector.weight * above) / (1 + vector.weight * (1 - vector.floor));
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
 * The final score: relevance (0..1, from fuseScores) scaled by a boost from recency, importance and
 * access. Relevance dominates; the boost reorders near-ties and lifts memories the user marked important.
 */
export function rerankScore(
  relevance: number,
  boost: { recency: number; importance: number; access: number },
  weights: RerankWeights = DEFAULT_RERANK_WEIGHTS,
): number {
  const base = 1 - weights.recency - weights.importance - weights.access;
  const factor =
    base +
    weights.recency * boost.recency +
    weights.importance * boost.importance +
    weights.access * boost.access;
  return relevance * factor;
}
