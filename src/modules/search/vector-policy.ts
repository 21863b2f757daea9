import type { EmbedderProvider } from '../embeddings/embedder.js';

/**
 * How recall treats each provider's vectors: the weight of its ranking against full text's (1) in
 * fusion, and the similarity below which a hit found only by its vector is no evidence (the relevance
 * floor: an unrelated query then returns nothing). Measured with `brain eval` on the LoCoMo dev file and
 * with unrelated queries (docs/QUALITY.md).
 */
export interface VectorPolicy {
  weight: number;
  floor: number;
}

export const VECTOR_POLICIES: Record<EmbedderProvider, VectorPolicy> = {
  hash: { weight: 0.25, floor: 0.25 },
  'use-lite': { weight: 0.5, floor: 0.3 },
  'use-lite-static': { weight: 0.5, floor: 0.3 },
  transformers: { weight: 1, floor: 0.3 },
  openai: { weight: 1, floor: 0.3 },
};
