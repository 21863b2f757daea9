import { describe, expect, it } from 'vitest';
import { quantizeInt8, vectorToBlob } from './sqlite-memory-rows.js';

describe('int8 quantisation of stored embeddings', () => {
  it('scales the largest component to ±127 and rounds the rest as Math.round does', () => {
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let n = 0; n < 200; n++) {
      const vector = Float32Array.from({ length: 1 + (n % 40) }, () => random() * 2 - 1);
      // Exact halves (the largest is 127, so the scale is 1): ties go up, as Math.round sends them.
      if (n % 3 === 0) vector.set([127, 0.5, 1.5, -2.5, -0.5].slice(0, vector.length));
      let max = 0;
      for (const v of vector) max = Math.max(max, Math.abs(v));
      const expected = Int8Array.from(vector, (v) => Math.round(v * (127 / max)));
      expect(Array.from(quantizeInt8(vector))).toEqual(Array.from(expected));
      expect(Math.max(...Array.from(quantizeInt8(vector), Math.abs))).toBe(127);
    }
  });

  it('keeps a zero vector zero and stores one byte per component', () => {
    expect(Array.from(quantizeInt8(new Float32Array(5)))).toEqual([0, 0, 0, 0, 0]);
    expect(vectorToBlob(new Float32Array([0.2, -0.4, 0.1])).byteLength).toBe(3);
  });
});
