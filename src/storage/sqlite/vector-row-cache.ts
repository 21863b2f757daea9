/**
 * The stored int8 vectors of one tenant and model, kept in memory so that re-scoring a search's
 * candidates reads each row's change_seq (with its liveness check) instead of its vector blob. Every
 * entry is the vector a row held at one change_seq: a write that touches a row (its embedding, its
 * content, a forget) bumps its change_seq, so a lookup with the row's current change_seq, read in
 * the same statement that checks it is live, never returns a vector another process has since replaced.
 * A lookup with any other change_seq misses, and the caller reads the row again.
 */
export class VectorRowCache {
  readonly dimensions: number;
  readonly #budget: VectorCacheBudget;
  readonly #slots = new Map<number, number>();
  #seqs = new Float64Array(0);
  /** Each vector's squared norm as sqlite-vec sums it (an integer); 0: the row has no usable vector. */
  #norms = new Uint32Array(0);
  #vectors = new Int8Array(0);

  constructor(dimensions: number, budget: VectorCacheBudget) {
    this.dimensions = dimensions;
    this.#budget = budget;
  }

  /** Rows held. */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * The row's similarity to `query` (see {@link int8Similarity}) when the cache holds it at `seq`;
   * null when it holds that the row had no vector of this model (or a zero one) at `seq`; undefined
   * when it does not hold the row at `seq` (a miss: read it from SQL).
   */
  similarity(rid: number, seq: number, query: Int8Array, queryNorm: number): number | null | undefined {
    const slot = this.#slots.get(rid);
    if (slot === undefined || this.#seqs[slot] !== seq) return undefined;
    const squared = this.#norms[slot] as number;
    if (squared === 0 || queryNorm === 0) return null;
    const norm = Math.sqrt(squared);
    return similarityOf(dotProduct(this.#vectors, slot * this.dimensions, query), norm, queryNorm);
  }

  /**
   * Keeps what a row holds at `seq`: its stored vector, or null when it has none of this model. A
   * vector of other dimensions counts as none. Past the budget nothing new is kept (misses then read
   * from SQL as before); a row already held is overwritten in place.
   */
  put(rid: number, seq: number, vector: Int8Array | null): void {
    let slot = this.#slots.get(rid);
    if (slot === undefined) {
      slot = this.#slots.size;
      if (slot >= this.#seqs.length && !this.#grow()) return;
      this.#slots.set(rid, slot);
    }
    this.#seqs[slot] = seq;
    const usable = vector !== null && vector.length === this.dimensions;
    this.#norms[slot] = usable ? squaredNorm(vector) : 0;
    if (usable) this.#vectors.set(vector, slot * this.dimensions);
  }

  /** Frees what the cache holds (and gives its bytes back to the budget). */
  clear(): void {
    this.#budget.release(this.#seqs.length * this.#bytesPerRow());
    this.#slots.clear();
    this.#seqs = new Float64Array(0);
    this.#norms = new Uint32Array(0);
    this.#vectors = new Int8Array(0);
  }

  /** The vector, its seq and its squared norm: 268 bytes a row at 256 dimensions. */
  #bytesPerRow(): number {
    return this.dimensions + 12;
  }

  /**
   * Grows the capacity by half (from 1,024 rows) if the budget allows; false when it does not. By half
   * rather than doubling: at 100,000 rows that holds at most a third more than it uses.
   */
  #grow(): boolean {
    const capacity = Math.max(1024, Math.ceil(this.#seqs.length * 1.5));
    const extra = (capacity - this.#seqs.length) * this.#bytesPerRow();
    if (!this.#budget.take(extra)) return false;
    const seqs = new Float64Array(capacity);
    seqs.set(this.#seqs);
    const norms = new Uint32Array(capacity);
    norms.set(this.#norms);
    const vectors = new Int8Array(capacity * this.dimensions);
    vectors.set(this.#vectors);
    this.#seqs = seqs;
    this.#norms = norms;
    this.#vectors = vectors;
    return true;
  }
}

/**
 * One store's caches, one per tenant and model, sharing one byte budget (first come, first kept: a
 * cache that meets the budget stops growing and its misses read SQL as they would without it).
 */
export class VectorRowCaches {
  readonly #budget: VectorCacheBudget;
  readonly #caches = new Map<string, VectorRowCache>();

  constructor(maxBytes: number) {
    this.#budget = new VectorCacheBudget(maxBytes);
  }

  /** Bytes the caches hold now (their capacity). */
  get bytes(): number {
    return this.#budget.used;
  }

  /** The tenant's cache for `model` at `dimensions` (a new one if the dimensions changed). */
  get(tenantId: string, model: string, dimensions: number): VectorRowCache {
    const key = `${tenantId}\u0000${model}`;
    let cache = this.#caches.get(key);
    if (cache?.dimensions !== dimensions) {
      cache?.clear();
      cache = new VectorRowCache(dimensions, this.#budget);
      this.#caches.set(key, cache);
    }
    return cache;
  }

  clear(): void {
    for (const cache of this.#caches.values()) cache.clear();
    this.#caches.clear();
  }
}

/** Bytes all of one store's vector caches may hold together. */
export class VectorCacheBudget {
  readonly #max: number;
  #used = 0;

  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  get used(): number {
    return this.#used;
  }

  take(bytes: number): boolean {
    if (this.#used + bytes > this.#max) return false;
    this.#used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/**
 * Up to this many dimensions every sum of int8 products (at most 128² each) stays under 2^24, where
 * sqlite-vec's float32 accumulators are exact, so plain sums give its values; above, each step is
 * rounded to float32 as it rounds them.
 */
const EXACT_FLOAT32_SUMS = Math.floor(2 ** 24 / 128 ** 2);

/** Σ a[offset + i] · b[i] over b, accumulated as sqlite-vec accumulates it. */
function dotProduct(a: Int8Array, offset: number, b: Int8Array): number {
  let sum = 0;
  if (b.length <= EXACT_FLOAT32_SUMS)
    for (let i = 0; i < b.length; i++) sum += (a[offset + i] as number) * (b[i] as number);
  else
    for (let i = 0; i < b.length; i++) sum = Math.fround(sum + (a[offset + i] as number) * (b[i] as number));
  return sum;
}

function squaredNorm(vector: Int8Array): number {
  return dotProduct(vector, 0, vector);
}

/**
 * 1 − sqlite-vec's vec_distance_cosine of two int8 vectors, to the bit: it sums the products in
 * float32 (see dotProduct), divides in double by the product of the two square roots, and rounds the
 * distance to float32.
 * Returning the same value keeps every similarity, and so every ranking, what SQL re-scoring gave.
 */
function similarityOf(dot: number, norm: number, queryNorm: number): number {
  return 1 - Math.fround(1 - dot / (norm * queryNorm));
}

/** The query's norm as {@link VectorRowCache.similarity} takes it. */
export function queryNorm(query: Int8Array): number {
  return Math.sqrt(squaredNorm(query));
}

/** The similarity of two int8 vectors of the same length, as {@link VectorRowCache.similarity} gives it. */
export function int8Similarity(a: Int8Array, b: Int8Array): number | null {
  const na = queryNorm(a);
  const nb = queryNorm(b);
  if (na === 0 || nb === 0) return null;
  return similarityOf(dotProduct(a, 0, b), na, nb);
}
