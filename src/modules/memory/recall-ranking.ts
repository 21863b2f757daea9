import {
  accessScore,
  DEFAULT_RERANK_WEIGHTS,
  fuseScores,
  recencyScore,
  rerankScore,
} from '../search/fuse-scores.js';
import type { VectorPolicy } from '../search/vector-policy.js';
import { MEMORY_LIMITS } from './memory-schemas.js';
import type { Candidates } from './memory-store.js';
import type { Memory, RecallHit } from './memory-types.js';

/**
 * The best `k` candidates by fused score and boost, best first (ties by id). A memory no query word
 * matched needs a similarity of at least the policy's `evidence` to be returned, so an unrelated query
 * returns nothing. Every candidate is scored, but only the
 * top `k` become hits with their signals: recall sees ~50 candidates and returns 10, and building the
 * rest was most of what a recall allocated outside the store.
 */
export function rankHits(
  candidates: Candidates,
  now: Date,
  policy: VectorPolicy | null,
  k: number,
  minScore: number,
): RecallHit[] {
  const textIds = candidates.text.map((h) => h.id);
  const vectorIds = candidates.vector.map((h) => h.id);
  const textScore = new Map(candidates.text.map((h) => [h.id, h.score]));
  const { similarity } = candidates;
  const bestText = candidates.text[0]?.score ?? 0;
  const scored: {
    id: string;
    memory: Memory;
    relevance: number;
    boost: ReturnType<typeof boostOf>;
    score: number;
  }[] = [];
  for (const id of new Set([...textIds, ...vectorIds])) {
    const memory = candidates.memories.get(id);
    if (!memory) continue;
    const evidence = { text: textScore.get(id) ?? 0, similarity: similarity.get(id) ?? null };
    // No word of the query matched and the vector is not close enough on its own: no evidence.
    if (evidence.text <= 0 && (!policy || (evidence.similarity ?? -1) < policy.evidence)) continue;
    const relevance = fuseScores(evidence, bestText, policy);
    if (relevance <= 0) continue;
    const boost = boostOf(memory, now);
    const score = rerankScore(relevance, boost);
    if (score >= minScore) scored.push({ id, memory, relevance, boost, score });
  }
  scored.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));
  return scored.slice(0, k).map(({ id, memory, relevance, boost, score }): RecallHit => {
    const textAt = textIds.indexOf(id);
    const vectorAt = vectorIds.indexOf(id);
    return {
      id,
      content: memory.content,
      type: memory.type,
      tags: memory.tags,
      key: memory.key,
      project: memory.project,
      session: memory.session,
      importance: memory.importance,
      created_at: memory.created_at,
      score,
      signals: {
        text_rank: textAt < 0 ? null : textAt + 1,
        text_score: candidates.text[textAt]?.score ?? null,
        vector_rank: vectorAt < 0 ? null : vectorAt + 1,
        vector_similarity: similarity.get(id) ?? null,
        relevance,
        ...boost,
      },
    };
  });
}

function boostOf(memory: Memory, now: Date): { recency: number; importance: number; access: number } {
  return {
    recency: recencyScore(memory.created_at, now, DEFAULT_RERANK_WEIGHTS.halfLifeDays),
    importance: memory.importance,
    access: accessScore(memory.access_count),
  };
}

/** Bytes of memory text an answer carries for one memory: its content and its metadata as JSON. */
function answerBytes(memory: { content: string; metadata?: Record<string, unknown> }): number {
  const metadata = memory.metadata === undefined ? 0 : Buffer.byteLength(JSON.stringify(memory.metadata));
  return Buffer.byteLength(memory.content) + metadata;
}

/**
 * The longest prefix of `items` whose memory text fits in MEMORY_LIMITS.responseBytes, and never fewer
 * than one item: one memory is at most 80 KiB, so any answer stays near the budget.
 */
export function withinResponseBudget<T extends { content: string; metadata?: Record<string, unknown> }>(
  items: T[],
): T[] {
  let used = 0;
  for (let i = 0; i < items.length; i++) {
    used += answerBytes(items[i] as T);
    if (used > MEMORY_LIMITS.responseBytes && i > 0) return items.slice(0, i);
  }
  return items;
}
