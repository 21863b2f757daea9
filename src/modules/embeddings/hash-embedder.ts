import { lightStem, STOPWORDS, wordTokens } from '../search/text-tokens.js';
import type { Embedder } from './embedder.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Seed of the second hash, which picks each feature's sign so that collisions cancel out on average. */
const SIGN_SEED = 0x9e3779b9;

/**
 * The two 32-bit FNV-1a hashes of a feature (bucket and sign), kept as running states so that a feature
 * such as `t:` + three letters is hashed in place, without building its string. The result is exactly
 * FNV-1a of the concatenated text.
 */
class FeatureHasher {
  bucket = 0;
  sign = 0;

  /** Starts at the state after hashing `prefix`. */
  reset(prefix: FeatureHasher): this {
    this.bucket = prefix.bucket;
    this.sign = prefix.sign;
    return this;
  }

  update(text: string, start = 0, end = text.length): this {
    let b = this.bucket;
    let s = this.sign;
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      b = Math.imul(b ^ c, FNV_PRIME);
      s = Math.imul(s ^ c, FNV_PRIME);
    }
    this.bucket = b;
    this.sign = s;
    return this;
  }

  static of(prefix: string): FeatureHasher {
    const h = new FeatureHasher();
    h.bucket = FNV_OFFSET;
    h.sign = FNV_OFFSET ^ SIGN_SEED;
    return h.update(prefix);
  }
}

const WORD = FeatureHasher.of('w:');
const PAIR = FeatureHasher.of('b:');
const TRIGRAM = FeatureHasher.of('t:');

function addFeature(vector: Float32Array, hash: FeatureHasher, weight: number): void {
  const index = (hash.bucket >>> 0) % vector.length;
  vector[index] = (vector[index] ?? 0) + (hash.sign & 1 ? weight : -weight);
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
    const hash = new FeatureHasher();
    let previous: string | null = null;
    for (const word of words) {
      const stem = lightStem(word);
      addFeature(vector, hash.reset(WORD).update(stem), 1);
      if (previous !== null)
        addFeature(vector, hash.reset(PAIR).update(previous).update(' ').update(stem), 0.5);
      previous = stem;
      // Character trigrams of "^word$".
      const padded = `^${word}$`;
      for (let i = 0; i + 3 <= padded.length; i++)
        addFeature(vector, hash.reset(TRIGRAM).update(padded, i, i + 3), 0.25);
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
    provider: 'hash',
    model: `hash-v1-${dimensions}`,
    inline: true,
    dimensions,
    embed: async (texts) => texts.map(embedOne),
  };
}
