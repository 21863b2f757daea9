import fs from 'node:fs';
import usearch from 'usearch';

/**
 * What the main thread searches in memory for one tenant and model, frozen at `seq`: rows changed after
 * it (the tail) are searched exactly in SQL beside it. Candidates are re-scored in SQL, so a stale entry
 * (a row deleted or changed since) costs a slot but is never returned as it was.
 */
export interface VectorSnapshot {
  readonly kind: 'matrix' | 'hnsw';
  /** Highest change_seq the snapshot reflects. */
  readonly seq: number;
  readonly size: number;
  readonly projectCounts: ReadonlyMap<string, number>;
  /** The rids of up to `want` nearest vectors to `query`, best first. */
  candidates(query: Int8Array, want: number): number[];
  /** Frees what the snapshot holds outside the JS heap (its file). */
  release(): void;
}

export interface HnswConfig {
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
}

export function newHnswIndex(dimensions: number, config: HnswConfig): InstanceType<typeof usearch.Index> {
  return new usearch.Index({
    dimensions,
    metric: usearch.MetricKind.Cos,
    quantization: usearch.ScalarKind.I8,
    connectivity: config.connectivity,
    expansion_add: config.expansionAdd,
    expansion_search: config.expansionSearch,
    multi: false,
  });
}

function keysToRids(keys: BigUint64Array, map: (key: number) => number): number[] {
  const rids: number[] = [];
  for (let i = 0; i < keys.length; i++) rids.push(map(Number(keys[i])));
  return rids;
}

/**
 * A first build's vectors as one int8 matrix, searched by brute force (usearch's SIMD exactSearch: ~0.3 ms
 * at 10k × 256, ~3 ms at 100k, where the same scan in SQL takes ~6 and ~60 ms). Serves until the graph
 * is ready, then is dropped.
 */
export class MatrixSnapshot implements VectorSnapshot {
  readonly kind = 'matrix';
  readonly seq: number;
  readonly projectCounts: ReadonlyMap<string, number>;
  readonly #rids: Float64Array;
  readonly #vectors: Int8Array;
  readonly #dimensions: number;

  constructor(seq: number, rids: Float64Array, vectors: Int8Array, counts: [string, number][]) {
    this.seq = seq;
    this.#rids = rids;
    this.#vectors = vectors;
    this.#dimensions = rids.length > 0 ? vectors.length / rids.length : 0;
    this.projectCounts = new Map(counts);
  }

  get size(): number {
    return this.#rids.length;
  }

  candidates(query: Int8Array, want: number): number[] {
    const count = Math.min(want, this.size);
    if (count === 0 || query.length !== this.#dimensions) return [];
    const found = usearch.exactSearch(
      this.#vectors,
      query,
      this.#dimensions,
      count,
      usearch.MetricKind.Cos,
      1,
    );
    return keysToRids((found as InstanceType<typeof usearch.Matches>).keys, (row) => this.#rids[row] ?? -1);
  }

  release(): void {}
}

/**
 * The HNSW graph a worker built, memory-mapped from its file (view(): ~1 ms at 10k, ~10 ms at 100k, where
 * load() copies it in for ~9 and ~80 ms). A viewed index is immutable: changes reach it only through the
 * next worker job.
 */
export class HnswSnapshot implements VectorSnapshot {
  readonly kind = 'hnsw';
  readonly seq: number;
  readonly size: number;
  readonly projectCounts: ReadonlyMap<string, number>;
  readonly file: string;
  readonly index: InstanceType<typeof usearch.Index>;

  constructor(
    file: string,
    dimensions: number,
    config: HnswConfig,
    meta: { seq: number; size: number; counts: [string, number][] },
  ) {
    this.file = file;
    this.index = newHnswIndex(dimensions, config);
    this.index.view(file);
    this.seq = meta.seq;
    this.size = this.index.size();
    this.projectCounts = new Map(meta.counts);
  }

  candidates(query: Int8Array, want: number): number[] {
    const count = Math.min(want, this.size);
    if (count === 0) return [];
    return keysToRids(this.index.search(query, count, 1).keys, (key) => key);
  }

  /** The file goes now; the mapping (and so the data) stays valid until the index is collected. */
  release(): void {
    fs.rmSync(this.file, { force: true });
  }
}
