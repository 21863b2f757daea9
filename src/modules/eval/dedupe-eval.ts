import type { Embedder } from '../embeddings/embedder.js';
import type { DedupePair } from './dedupe-pairs.js';

/** How a threshold does on a labelled set: merges of different facts and paraphrases left apart. */
export interface DedupeRates {
  threshold: number;
  /** Share of `different` pairs at or above the threshold (a fact lost): keep under 1%. */
  falseMerge: number;
  /** Share of `same` pairs below it (a duplicate kept). */
  missedMerge: number;
}

/** Cosine similarity of two vectors (the providers' vectors are unit length, so it is the dot product). */
function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** The similarity of each pair under an embedder, in the pairs' order. */
export async function pairSimilarities(embedder: Embedder, pairs: readonly DedupePair[]): Promise<number[]> {
  const vectors = await embedder.embed(pairs.flatMap((p) => [p.a, p.b]));
  return pairs.map((_, i) => {
    const a = vectors[2 * i];
    const b = vectors[2 * i + 1];
    return a && b ? cosine(a, b) : 0;
  });
}

/** The rates at one threshold: a pair merges when its similarity is at or above it (as on write). */
export function dedupeRates(
  pairs: readonly DedupePair[],
  similarities: readonly number[],
  threshold: number,
): DedupeRates {
  let same = 0;
  let different = 0;
  let falseMerges = 0;
  let missed = 0;
  pairs.forEach((pair, i) => {
    const merges = (similarities[i] ?? 0) >= threshold;
    if (pair.same) {
      same++;
      if (!merges) missed++;
    } else {
      different++;
      if (merges) falseMerges++;
    }
  });
  return {
    threshold,
    falseMerge: different === 0 ? 0 : falseMerges / different,
    missedMerge: same === 0 ? 0 : missed / same,
  };
}

/**
 * The lowest threshold (of `candidates`, on a 0.005 grid by default) whose false-merge rate is under
 * `maxFalseMerge`: the one that merges most while losing (almost) no fact.
 */
export function safestThreshold(
  pairs: readonly DedupePair[],
  similarities: readonly number[],
  maxFalseMerge = 0.01,
  candidates: readonly number[] = Array.from({ length: 201 }, (_, i) => i / 200),
): DedupeRates {
  for (const t of candidates) {
    const rates = dedupeRates(pairs, similarities, t);
    if (rates.falseMerge < maxFalseMerge) return rates;
  }
  return dedupeRates(pairs, similarities, 1.000001);
}
