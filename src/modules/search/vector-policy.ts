import type { EmbedderProvider } from '../embeddings/embedder.js';

/**
 * How recall treats each provider's vectors (docs/QUALITY.md):
 * - `weight`: how much the similarity above `floor` counts against the full-text score (0..1 each) in
 *   score fusion, measured with `brain eval` on the LoCoMo dev file;
 * - `floor`: the similarity that counts as none in fusion (a model's unrelated texts sit around it);
 * - `evidence`: the similarity a memory that no word of the query matched needs to be returned at all:
 *   the relevance floor, so that an unrelated query returns nothing instead of the nearest memories.
 */
export interface VectorPolicy {
  weight: number;
  floor: number;
  evidence: number;
}

export const VECTOR_POLICIES: Record<EmbedderProvider, VectorPolicy> = {
  // A word matcher: it repeats full text's evidence, so it only breaks near-ties. Unrelated texts score
  // 0.00-0.09 with it, a shared word 0.25 and more.
  hash: { weight: 0.1, floor: 0, evidence: 0.3 },
  // Static vectors crowd together (unrelated texts 0.1-0.8, related ones 0.75-0.95): they rank well
  // relative to each other but say little on their own, hence the high bar for vector-only hits.
  'use-lite-static': { weight: 1, floor: 0.2, evidence: 0.85 },
  'use-lite': { weight: 0.5, floor: 0.2, evidence: 0.6 },
  // Sentence models proper: unrelated texts near 0-0.2, paraphrases above 0.5.
  transformers: { weight: 1, floor: 0.2, evidence: 0.5 },
  openai: { weight: 1, floor: 0.2, evidence: 0.5 },
};
