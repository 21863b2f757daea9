import { LRUCache } from 'lru-cache';
import type { OperationTier } from './memory-operations.js';
import type { RecallResult } from './memory-types.js';

/**
 * How long a cached recall answer is served, at most. A hit carries the recency and access signals
 * computed when the answer was made: recency moves by ~0.0003% of a half-life in 10 s, and the access
 * counts recall itself adds (a touch does not invalidate, or a repeated query would never hit) move
 * the access boost by at most one recall's worth. Writes invalidate at once; this bounds the drift.
 */
export const RECALL_CACHE_TTL_MS = 10_000;

/** Bytes an entry costs beyond its payload: the key, the entry object and the LRU's slots for it. */
const ENTRY_OVERHEAD_BYTES = 200;

/** Lookups since start, per kind, and what the cache holds now (metrics, benchmarks). */
export interface RecallCacheStats {
  results: { hits: number; misses: number };
  queryVectors: { hits: number; misses: number };
  entries: number;
  bytes: number;
  maxBytes: number;
}

type Entry =
  /**
   * `json`: the answer as JSON, parsed again on each hit so no caller can change the cached one;
   * `tier`: the coldest tier of its hits (metrics), which holds as long as the version does, since a
   * tier move changes the version.
   */
  | { kind: 'result'; json: string; version: string; until: number; tier: OperationTier }
  | { kind: 'vector'; vector: Float32Array | null };

/** What JavaScript holds of a string: UTF-16, two bytes per code unit. */
function stringBytes(s: string): number {
  return s.length * 2;
}

/**
 * Recall's cache of answers and query vectors, per tenant, in one LRU bounded by bytes (lru-cache's
 * `maxSize`, each entry sized by its JSON text or vector bytes plus its key). An answer is valid while
 * the tenant's change version (MemoryStore.changeVersion) is the one it was made at, and until its
 * deadline; a stale one is dropped when looked up. `maxBytes` 0: nothing is cached, every lookup misses.
 */
export class RecallCache {
  readonly #lru: LRUCache<string, Entry> | null;
  readonly #maxBytes: number;
  readonly #stats = { results: { hits: 0, misses: 0 }, queryVectors: { hits: 0, misses: 0 } };

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
    this.#lru =
      maxBytes > 0
        ? new LRUCache<string, Entry>({
            maxSize: maxBytes,
            sizeCalculation: (entry, key) =>
              ENTRY_OVERHEAD_BYTES +
              stringBytes(key) +
              (entry.kind === 'result'
                ? stringBytes(entry.json) + stringBytes(entry.version)
                : (entry.vector?.byteLength ?? 0)),
          })
        : null;
  }

  get enabled(): boolean {
    return this.#lru !== null;
  }

  /**
   * The cached answer for `key` made at `version` and not past its deadline (`now`, ms), with the tier
   * it was kept with, or undefined.
   */
  getResult(
    key: string,
    version: string,
    now: number,
  ): { result: RecallResult; tier: OperationTier } | undefined {
    const entry = this.#lru?.get(key);
    if (entry?.kind === 'result' && entry.version === version && now < entry.until) {
      this.#stats.results.hits++;
      return { result: JSON.parse(entry.json) as RecallResult, tier: entry.tier };
    }
    // Made before a write of the tenant (or past its deadline): never served again, so make room.
    if (entry) this.#lru?.delete(key);
    this.#stats.results.misses++;
    return undefined;
  }

  /** Keeps an answer made at `version` (its hits' coldest tier `tier`), served until `until` (ms) at the latest. */
  setResult(key: string, version: string, until: number, result: RecallResult, tier: OperationTier): void {
    this.#lru?.set(key, { kind: 'result', json: JSON.stringify(result), version, until, tier });
  }

  /** The cached query vector (null: the embedder found nothing to embed), or undefined when not cached. */
  getVector(key: string): Float32Array | null | undefined {
    const entry = this.#lru?.get(key);
    if (entry?.kind === 'vector') {
      this.#stats.queryVectors.hits++;
      return entry.vector;
    }
    this.#stats.queryVectors.misses++;
    return undefined;
  }

  setVector(key: string, vector: Float32Array | null): void {
    this.#lru?.set(key, { kind: 'vector', vector });
  }

  stats(): RecallCacheStats {
    return {
      results: { ...this.#stats.results },
      queryVectors: { ...this.#stats.queryVectors },
      entries: this.#lru?.size ?? 0,
      bytes: this.#lru?.calculatedSize ?? 0,
      maxBytes: this.#maxBytes,
    };
  }
}

/**
 * The cache key of a recall: the tenant and every parsed input field (query as given, k and min_score
 * with their defaults, every filter, include_cold), in a fixed order, so two calls share a key only when
 * they would get the same answer. A field added to the recall schema joins the key by itself.
 */
export function recallKey(tenantId: string, input: Record<string, unknown>): string {
  const fields = Object.keys(input)
    .filter((name) => input[name] !== undefined)
    .sort()
    .map((name) => [name, input[name]]);
  return `r\0${JSON.stringify([tenantId, fields])}`;
}

/** The cache key of a query vector: per tenant (one tenant's queries say nothing of another's), model, text. */
export function queryVectorKey(tenantId: string, model: string, query: string): string {
  return `v\0${JSON.stringify([tenantId, model, query])}`;
}
