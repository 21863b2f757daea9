import { describe, expect, it } from 'vitest';
import { openSqliteDatabase } from './sqlite-database.js';
import {
  int8Similarity,
  queryNorm,
  VectorCacheBudget,
  VectorRowCache,
  VectorRowCaches,
} from './vector-row-cache.js';

/**
 * Deterministic int8 vectors (a linear congruential generator) of values near ±127, so that at 1,536
 * dimensions the squared norms pass 2^24, where float32 sums start to round.
 */
function vectors(count: number, dimensions: number, seed: number): Int8Array[] {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const value = () => (next() < 0.5 ? -1 : 1) * (127 - Math.floor(next() * 9));
  return Array.from({ length: count }, () => Int8Array.from({ length: dimensions }, value));
}

const blob = (v: Int8Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

describe('vector row cache', () => {
  it('scores int8 vectors to the bit as sqlite-vec does, also past the dimensions where float32 sums round', () => {
    const db = openSqliteDatabase(':memory:', { busyTimeoutMs: 1000, cacheSizeMb: 4 });
    const distance = db.prepare('SELECT vec_distance_cosine(vec_int8(?), vec_int8(?))').pluck();
    for (const dimensions of [8, 256, 1536]) {
      const list = vectors(200, dimensions, dimensions);
      const cache = new VectorRowCache(dimensions, new VectorCacheBudget(1 << 30));
      for (const [rid, v] of list.entries()) cache.put(rid, 1, v);
      const query = list[0] as Int8Array;
      for (const [rid, v] of list.entries()) {
        const sql = 1 - (distance.get(blob(v), blob(query)) as number);
        expect(int8Similarity(v, query)).toBe(sql);
        expect(cache.similarity(rid, 1, query, queryNorm(query))).toBe(sql);
      }
    }
    db.close();
  });

  it('answers only at the seq a row was kept at, and keeps a row without a vector as none', () => {
    const cache = new VectorRowCache(4, new VectorCacheBudget(1 << 20));
    const query = Int8Array.from([1, 2, 3, 4]);
    const norm = queryNorm(query);
    cache.put(7, 10, Int8Array.from([1, 2, 3, 4]));
    expect(cache.similarity(7, 10, query, norm)).toBeCloseTo(1, 6);
    expect(cache.similarity(7, 11, query, norm)).toBeUndefined();
    expect(cache.similarity(8, 10, query, norm)).toBeUndefined();
    // The row changed: its new version replaces the old one in place.
    cache.put(7, 11, Int8Array.from([-1, -2, -3, -4]));
    expect(cache.similarity(7, 10, query, norm)).toBeUndefined();
    expect(cache.similarity(7, 11, query, norm)).toBeCloseTo(-1, 6);
    // No vector of the model, a zero vector or one of other dimensions: kept as none, not a miss.
    cache.put(8, 3, null);
    cache.put(9, 3, new Int8Array(4));
    cache.put(10, 3, Int8Array.from([1, 2, 3]));
    for (const rid of [8, 9, 10]) expect(cache.similarity(rid, 3, query, norm)).toBeNull();
    expect(cache.size).toBe(4);
  });

  it('stops keeping new rows at its budget, shared by every tenant, and gives the bytes back when cleared', () => {
    // 1,024 rows of 4 + 12 bytes fit once; the next growth would pass the budget.
    const caches = new VectorRowCaches(1024 * 16 + 100);
    const a = caches.get('a', 'm', 4);
    for (let rid = 0; rid < 1500; rid++) a.put(rid, 1, Int8Array.from([1, 1, 1, rid % 100]));
    expect(a.size).toBe(1024);
    expect(caches.bytes).toBe(1024 * 16);
    const b = caches.get('b', 'm', 4);
    b.put(1, 1, Int8Array.from([1, 1, 1, 1]));
    expect(b.size).toBe(0);
    // A row already kept is still updated in place.
    a.put(5, 2, Int8Array.from([2, 2, 2, 2]));
    expect(a.similarity(5, 2, Int8Array.from([1, 1, 1, 1]), 2)).toBeCloseTo(1, 6);
    // Other dimensions for the same tenant and model: a new cache, the old one freed.
    caches.get('a', 'm', 8);
    expect(caches.bytes).toBe(0);
    caches.clear();
    expect(caches.bytes).toBe(0);
  });
});
