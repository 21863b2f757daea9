import { expect, it } from 'vitest';
import type { Embedder } from '../src/modules/embeddings/embedder.js';

export const cosine = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + v * (b[i] ?? 0), 0);
export const norm = (a: Float32Array) => Math.sqrt(cosine(a, a));

/** The cases every semantic embedder must pass, on the embedder `get` returns once it is created. */
export function semanticEmbedderCases(get: () => Embedder): void {
  it('gives unit vectors of the stated dimension', async () => {
    const embedder = get();
    const [vector] = await embedder.embed(['The cat sat on the mat']);
    expect(vector).toHaveLength(embedder.dimensions);
    expect(norm(vector as Float32Array)).toBeCloseTo(1, 4);
  });

  it('scores a paraphrase with no shared words above an unrelated sentence', async () => {
    const [cat, kitten, revenue] = (await get().embed([
      'The cat sat on the mat',
      'A kitten rested on the rug',
      'Quarterly revenue rose sharply',
    ])) as [Float32Array, Float32Array, Float32Array];
    expect(cosine(cat, kitten)).toBeGreaterThan(cosine(cat, revenue) + 0.1);
    expect(cosine(cat, kitten)).toBeGreaterThan(cosine(kitten, revenue) + 0.1);
  });
}
