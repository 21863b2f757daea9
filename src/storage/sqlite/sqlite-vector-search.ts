import type { Logger } from '../../core/logger.js';
import type { MemoryFilter } from '../../modules/memory/memory-filter.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { quantizeInt8, vectorToBlob } from './sqlite-memory-rows.js';
import { type RowVersion, SqliteVectorExact, type VectorHit } from './sqlite-vector-exact.js';
import { StatementCache } from './statement-cache.js';
import { VectorBuildScheduler } from './vector-build-scheduler.js';
import type { VectorIndexView } from './vector-index-state.js';
import { VectorRowCaches } from './vector-row-cache.js';
import { DEFAULT_VECTOR_SEARCH_OPTIONS, type VectorSearchOptions } from './vector-search-options.js';
import { searchSnapshot, snapshotShare } from './vector-snapshot-search.js';

export type { RowVersion, VectorHit } from './sqlite-vector-exact.js';
export type { IndexStateKind, VectorIndexView } from './vector-index-state.js';
export { DEFAULT_VECTOR_SEARCH_OPTIONS, type VectorSearchOptions } from './vector-search-options.js';

/**
 * Vector search over memory_embeddings with sqlite-vec, accelerated for large tenants by an HNSW index
 * (usearch) that a worker thread builds from the rows and the main thread only memory-maps. This class
 * routes each search: to the tenant's snapshot and its tail (vector-snapshot-search) when one can serve
 * it, else to exact SQL (SqliteVectorExact). When indexes are built is the scheduler's business
 * (VectorBuildScheduler), where each one stands the state machine's (VectorIndexState).
 *
 * SQLite stays the only source of truth: rows changed after the snapshot (the tail) are searched exactly
 * beside it, so writes from other processes on the same file are seen at once, and every candidate is
 * re-checked in SQL, so a stale entry can cost a slot but never returns a deleted, expired, other-model
 * or other-tenant memory. Re-scoring reads vectors from an in-memory copy of the rows (VectorRowCache)
 * only at the change_seq SQL reports for each row, so another process's write is never scored stale.
 */
export class SqliteVectorSearch {
  readonly #exact: SqliteVectorExact;
  readonly #options: VectorSearchOptions;
  readonly #scheduler: VectorBuildScheduler;
  readonly #caches: VectorRowCaches;

  constructor(db: SqliteDatabase, logger: Logger, options: Partial<VectorSearchOptions> = {}) {
    const sql = new StatementCache(db);
    this.#options = { ...DEFAULT_VECTOR_SEARCH_OPTIONS, ...options };
    this.#caches = new VectorRowCaches(this.#options.rescoreCacheBytes);
    this.#exact = new SqliteVectorExact(sql, this.#caches);
    this.#scheduler = new VectorBuildScheduler(sql, db.name, logger, this.#options);
  }

  /** Nearest live memories to `embedding` among those matching the filter, best first. */
  search(
    tenantId: string,
    embedding: Float32Array,
    model: string,
    filter: MemoryFilter,
    limit: number,
    now: string,
  ): { hits: VectorHit[]; mode: 'exact' | 'approximate' } {
    const state = this.#scheduler.stateFor(tenantId, model, embedding.length);
    const snapshot = state?.snapshot;
    const share = snapshot ? snapshotShare(snapshot, filter) : null;
    if (state && snapshot && share !== null) {
      const pending = this.#scheduler.tail(state, snapshot);
      const query = { tenantId, embedding, model, filter, limit, now };
      const found = searchSnapshot(this.#exact, snapshot, query, {
        share,
        pending,
        oversample: this.#options.oversample,
      });
      if (found) return found;
    }
    return {
      hits: this.#exact.search(tenantId, vectorToBlob(embedding), model, filter, limit, now),
      mode: 'exact',
    };
  }

  /** Builds the ANN index of a tenant now (awaitable, in the worker on all cores), e.g. before a benchmark. */
  warm(tenantId: string, model: string, dimensions: number): Promise<void> {
    return this.#scheduler.warm(tenantId, model, dimensions);
  }

  /**
   * Starts building the tenant's ANN index in the background when the tenant is large enough, and keeps
   * watching it: a bulk import (writes without searches) then starts the build, and its catch-ups, while
   * it runs, not on the first recall after it.
   */
  prepare(tenantId: string, model: string, dimensions: number): void {
    this.#scheduler.watch(tenantId, model, dimensions);
  }

  /** The tenant's ANN index as it stands, or null when it has none (for tests, metrics and logs). */
  describe(tenantId: string, model: string): VectorIndexView | null {
    return this.#scheduler.get(tenantId, model)?.view() ?? null;
  }

  /** Whether the tenant's ANN index exists and has caught up once (a graph serves). */
  isReady(tenantId: string, model: string): boolean {
    return this.#scheduler.get(tenantId, model)?.graph != null;
  }

  /** Worker threads still running (0 once close() has taken effect: see stopped()). */
  get runningWorkers(): number {
    return this.#scheduler.runningWorkers;
  }

  /** Resolves once every worker thread has exited (after close(), or when idle). */
  stopped(): Promise<void> {
    return this.#scheduler.stopped();
  }

  /**
   * Terminates the build workers, saves every ready index that changed since it was last saved (a few
   * hundred ms at 100k, at shutdown only) and removes the snapshot files.
   */
  close(): void {
    this.#scheduler.close();
    this.#caches.clear();
  }

  /** Bytes the in-memory copies of re-scored vectors hold (their capacity; for tests and metrics). */
  get cachedVectorBytes(): number {
    return this.#caches.bytes;
  }

  /**
   * The exact similarity to `embedding` of each given memory that has a vector of `model`, each row as
   * the caller read it live at its change_seq (fusion weighs every candidate's similarity, also those
   * the vector search did not bring).
   */
  similarities(
    tenantId: string,
    embedding: Float32Array,
    model: string,
    rows: RowVersion[],
    now: string,
  ): VectorHit[] {
    return this.#exact.similarities(tenantId, rows, quantizeInt8(embedding), model, now);
  }

  /** Exact (brute-force) nearest neighbours in SQL: the reference the ANN index is measured against. */
  searchExact(
    tenantId: string,
    embedding: Float32Array,
    model: string,
    filter: MemoryFilter,
    limit: number,
    now: string,
    afterSeq = 0,
  ): VectorHit[] {
    const blob = vectorToBlob(embedding);
    return afterSeq > 0
      ? this.#exact.searchTail(tenantId, blob, model, filter, limit, now, afterSeq)
      : this.#exact.search(tenantId, blob, model, filter, limit, now);
  }
}
