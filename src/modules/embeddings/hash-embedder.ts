import { lightStem, STOPWORDS, wordTokens } from '../search/text-tokens.js';
import type { Embedder } from './embedder.js';

/** FNV-1a, 32 bit: fast, stable across runs and platforms. */
function fnv1a(text: string, seed: number): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function addFeature(vector: Float32Array, feature: string, weight: number): void {
  const hash = fnv1a(feature, 0);
  const index = hash % vector.length;
  // A second, independent bit picks the sign so that collisions cancel out on average.
  const sign = fnv1a(feature, 0x9e3779b9) & 1 ? 1 : -1;
  vector[index] = (vector[index] ?? 0) + sign * weight;
}

/**
 * The built-in embedder: deterministic, dependency-free feature hashing of stemmed words, word pairs and
 * character trigrams into a fixed number of dimensions. It matches morphological variants and shared
 * wording, not meaning; semantic models plug in through the same `Embedder` interface.
 */
export function createHashEmbedder(dimensions = 256): Embedder {
  const embedOne = (text: string): Float32Array => {
    const vector = new Float32Array(dimensions);
    const words = wordTokens(text).filter((w) => !STOPWORDS.has(w));
    let previous: string | null = null;
    for (const word of words) {
      const stem = lightStem(word);
      addFeature(vector, `w:${stem}`, 1);
      if (previous !== null) addFeature(vector, `b:${previous} ${stem}`, 0.5);
      previous = stem;
      const padded = `^${word}$`;
      for (let i = 0; i + 3 <= padded.length; i++) addFeature(vector, `t:${padded.slice(i, i + 3)}`, 0.25);
    }
    let norm = 0;
    for (let i = 0; i < dimensions; i++) norm += (vector[i] ?? 0) ** 2;
    if (norm > 0) {
      const scale = 1 / Math.sqrt(norm);
      for (let i = 0; i < dimensions; i++) vector[i] = (vector[i] ?? 0) * scale;
    }
    return vector;
  };
  return {
    model: `hash-v1-${dimensions}`,
    dimensions,
    embed: async (texts) => texts.map(embedOne),
  };
}
