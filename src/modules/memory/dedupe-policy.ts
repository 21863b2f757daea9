import type { EmbedderProvider } from '../embeddings/embedder.js';

/**
 * The cosine similarity at or above which a write merges into its nearest live memory, per provider, or
 * null: near-duplicate merging off (exact duplicates still merge). A false merge loses a fact, so a
 * default must keep false merges under 1% on the hand-written labelled set (src/modules/eval/dedupe-pairs.ts,
 * `npm run bench -- dedupe-eval`, figures in docs/PERFORMANCE.md). None of the providers measured does at
 * any threshold: hash and use-lite-static are bags of words ("likes jazz more than pop" and "pop more
 * than jazz" are one vector, "is" and "is not" nearly so), and use-lite still merged 3.8% of look-alikes
 * at 0.995 while merging no paraphrase. transformers and openai could not be measured here (no model, no
 * network), so they stay off until they are. `BRAIN_DEDUPE_THRESHOLD` turns merging on for any provider.
 */
export const DEDUPE_THRESHOLDS: Record<EmbedderProvider, number | null> = {
  hash: null,
  'use-lite-static': null,
  'use-lite': null,
  transformers: null,
  openai: null,
};
