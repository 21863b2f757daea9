import usearch from 'usearch';
import type { Logger } from '../../core/logger.js';
import { hasFilterCondition, type MemoryFilter } from '../../modules/memory/memory-filter.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { blobToInt8, liveMemoryWhere, quantizeInt8, vectorToBlob } from './sqlite-memory-rows.js';
import { StatementCache } from './statement-cache.js';
import { type IndexIdentity, loadVectorIndex, saveVectorIndex } from './vector-index-file.js';

export interface VectorHit {
  rid: number;
  similarity: number;
}

export interface VectorSearchOptions {
  /** Below this many vectors in a tenant, exact search is fast enough and no ANN index is kept. */
  annMinVectors: number;
  /** Rows applied to an ANN index per event-loop turn while it catches up in the background. */
  buildChunk: number;
  /** Up to this many pending changes are applied inline before a search; more go to the background. */
  inlineCatchUp: number;
  /** HNSW beam width at query time: higher is more exact and slower. */
  expansionSearch: number;
  /** HNSW links per node: more makes a better graph, a bigger index and a slower build. */
  connectivity: number;
  /** HNSW beam width while inserting: higher builds a better graph, slower. */
  expansionAdd: number;
  /**
   * ANN candidates fetched per result wanted. The index ranks by int8 distance in a graph walk; the
   * short list is re-scored exactly in SQL, so fetching a few times more than asked recovers most of
   * what the walk ranks slightly wrong, for a few extra row reads.
   */
  oversample: number;
  /**
   * Directory where each tenant's index is saved (after a build and at close) and loaded from at start,
   * so that a restart does not rebuild it; null keeps indexes in memory only.
   */
  indexDir: string | null;
  /** A finished build or catch-up that applied at least this many changes saves the index. */
  saveAfterChanges: number;
}

export const DEFAULT_VECTOR_SEARCH_OPTIONS: VectorSearchOptions = {
  // An exact SQL scan costs ~0.6 µs per vector; past 1,000 the HNSW index answers faster and as well.
  annMinVectors: 1000,
  // Each chunk holds the event loop while usearch inserts it: at 100k, 512 vectors took ~210 ms (p50,
  // up to ~350), 128 take ~55 ms (up to ~140) for a build only ~4% slower (40.4 vs 42.0 s).
  buildChunk: 128,
  inlineCatchUp: 256,
  // Tuned on 100k hash-embedded memories (npm run bench -- recall): connectivity 16 / ef 96 reached only
  // 0.86 recall@10 against exact search; connectivity 32 with a wider insert beam (400) reaches (tie-aware,
  // 28 fetched and re-scored) 0.955 at ef 80, 0.962 at ef 96, 0.966 at ef 112, 0.970 at ef 128. Each
  // step of 16 costs ~0.05 ms per search. The build is multi-threaded, so the graph and its recall vary
  // from build to build (0.958-0.968 over five builds at ef 112): 128 keeps a margin over the 0.95 target.
  expansionSearch: 128,
  connectivity: 32,
  expansionAdd: 400,
  oversample: 1,
  indexDir: null,
  saveAfterChanges: 1000,
};

/** The ANN state of a tenant and embedding model. */
function stateKey(tenantId: string, model: string): string {
  return `${tenantId}\u0000${model}`;
}

/** Keys checked per contains() call when a saved index is loaded. */
const LOAD_CHECK_CHUNK = 4096;

/** Share of a tenant a project must hold for a project-filtered search to use the tenant's ANN index. */
const ANN_MIN_SHARE = 0.3;

interface AnnState {
  readonly index: InstanceType<typeof usearch.Index>;
  dimensions: number;
  /** Highest change_seq applied to the index. */
  seq: number;
  /** The change_seq of the saved copy of the index (0: none). */
  savedSeq: number;
  tenantId: string;
  model: string;
  /** rid → project ('' for none) of every vector in the index, for per-project counts. */
  projectOf: Map<number, string>;
  projectCounts: Map<string, number>;
  building: boolean;
  /** true once the first full catch-up finished; until then searches run exact. */
  ready: boolean;
  /** true when the index started from a saved copy rather than from the rows. */
  loaded: boolean;
}

interface ChangeRow {
  rid: number;
  project: string | null;
  deleted_at: string | null;
  model: string | null;
  embedding: Buffer | null;
  change_seq: number;
}

/**
 * One batch of vectors for usearch's add(), in buffers reused across batches. usearch's JS wrapper
 * copies any vector array that is not a Float32Array into a new one, so handing it int8 rows cost a
 * fresh 512 KB per 512 rows: ~100 MB of garbage to build a 100k index, which raised the peak RSS.
 */
class IndexAdditions {
  #keys = new BigUint64Array(0);
  #vectors = new Float32Array(0);
  #dimensions = 0;
  #count = 0;

  /** Empties the batch, growing the buffers to hold `capacity` vectors if needed. */
  reset(dimensions: number, capacity: number): this {
    if (this.#keys.length < capacity || dimensions * capacity > this.#vectors.length) {
      this.#keys = new BigUint64Array(capacity);
      this.#vectors = new Float32Array(capacity * dimensions);
    }
    this.#dimensions = dimensions;
    this.#count = 0;
    return this;
  }

  push(rid: number, vector: Int8Array): void {
    this.#keys[this.#count] = BigInt(rid);
    // usearch rescales each vector itself, so the int8 values go in as they are.
    this.#vectors.set(vector, this.#count * this.#dimensions);
    this.#count++;
  }

  addTo(index: InstanceType<typeof usearch.Index>): void {
    if (this.#count === 0) return;
    index.add(
      this.#keys.subarray(0, this.#count),
      this.#vectors.subarray(0, this.#count * this.#dimensions),
      0,
    );
  }
}

/**
 * Vector search over memory_embeddings with sqlite-vec, accelerated for large tenants by an in-process
 * HNSW index (usearch). SQLite stays the only source of truth: the index is derived from rows ordered
 * by change_seq and caught up before each search, so writes from other processes on the same file are
 * seen too. Every ANN candidate is re-checked and re-scored exactly in SQL, so a stale index entry
 * can cost a slot but never returns a deleted, expired or other-tenant memory.
 */
export class SqliteVectorSearch {
  readonly #sql: StatementCache;
  readonly #options: VectorSearchOptions;
  readonly #logger: Logger;
  readonly #states = new Map<string, AnnState>();
  readonly #sizeChecks = new Map<string, { seq: number; at: number; count: number }>();
  readonly #additions = new IndexAdditions();
  #closed = false;

  constructor(db: SqliteDatabase, logger: Logger, options: Partial<VectorSearchOptions> = {}) {
    this.#sql = new StatementCache(db);
    this.#logger = logger;
    this.#options = { ...DEFAULT_VECTOR_SEARCH_OPTIONS, ...options };
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
    const state = this.#annFor(tenantId, model, embedding.length);
    if (state?.ready) {
      const share = this.#annShare(state, filter);
      if (share !== null) {
        const current = this.#catchUp(tenantId, model, state, this.#options.inlineCatchUp);
        let hits = this.#searchAnn(state, tenantId, embedding, filter, limit, now, share);
        if (!current) {
          // More changes than fit inline (a bulk import): the background build takes the rest, and
          // meanwhile the not-yet-indexed tail is searched exactly too.
          this.#buildInBackground(state);
          const tail = this.searchExact(tenantId, embedding, model, filter, limit, now, state.seq);
          hits = [...hits, ...tail].sort((a, b) => b.similarity - a.similarity).slice(0, limit);
        }
        // Too few survivors (a filter or many stale entries): the exact path still answers right.
        const expected = Math.min(limit, Math.floor(share * state.projectOf.size));
        if (hits.length >= expected) return { hits, mode: 'approximate' };
      }
    }
    return { hits: this.searchExact(tenantId, embedding, model, filter, limit, now), mode: 'exact' };
  }

  /** Builds the ANN index of a tenant now (awaitable), e.g. at startup or before a benchmark. */
  async warm(tenantId: string, model: string, dimensions: number): Promise<void> {
    if (this.#closed) return; // a background build scheduled just before close
    const state = this.#ensureState(tenantId, model, dimensions);
    while (!this.#closed && !this.#catchUp(tenantId, model, state, this.#options.buildChunk)) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.#closed) return;
    state.ready = true;
    if (state.seq - state.savedSeq >= this.#options.saveAfterChanges) this.#save(state);
  }

  /** Starts building the tenant's ANN index in the background when the tenant is large enough. */
  prepare(tenantId: string, model: string, dimensions: number): void {
    this.#annFor(tenantId, model, dimensions);
  }

  /** The tenant's ANN index as it stands, or null when it has none (for tests, metrics and logs). */
  describe(
    tenantId: string,
    model: string,
  ): { vectors: number; seq: number; savedSeq: number; ready: boolean; loaded: boolean } | null {
    const state = this.#states.get(stateKey(tenantId, model));
    if (!state) return null;
    return {
      vectors: state.index.size(),
      seq: state.seq,
      savedSeq: state.savedSeq,
      ready: state.ready,
      loaded: state.loaded,
    };
  }

  /** Whether the tenant's ANN index exists and has caught up once. */
  isReady(tenantId: string, model: string): boolean {
    return this.#states.get(stateKey(tenantId, model))?.ready ?? false;
  }

  /** Stops background builds and saves every ready index that changed since it was last saved. */
  close(): void {
    this.#closed = true;
    for (const state of this.#states.values())
      if (state.ready && state.seq > state.savedSeq) this.#save(state);
    this.#states.clear();
  }

  #identity(state: AnnState): IndexIdentity | null {
    if (this.#options.indexDir === null) return null;
    let instanceId: string | undefined;
    try {
      instanceId = this.#sql.get("SELECT value FROM brain_meta WHERE key = 'instance_id'").pluck().get() as
        | string
        | undefined;
    } catch {
      return null; // not migrated yet: nothing to match a saved index against
    }
    if (!instanceId) return null;
    return {
      instanceId,
      tenantId: state.tenantId,
      model: state.model,
      dimensions: state.dimensions,
      connectivity: this.#options.connectivity,
    };
  }

  #save(state: AnnState): void {
    const identity = this.#identity(state);
    const dir = this.#options.indexDir;
    if (!identity || dir === null) return;
    try {
      saveVectorIndex(dir, identity, state.index, state.seq);
      state.savedSeq = state.seq;
    } catch (error) {
      this.#logger.warn({ err: error, dir }, 'could not save the vector index; the next start rebuilds it');
    }
  }

  /**
   * Loads the tenant's saved index into a new state when one matches this database, model and shape, and
   * every vector it should hold is in it. False when it could not: the caller then builds from the rows.
   */
  #load(state: AnnState): boolean {
    const identity = this.#identity(state);
    const dir = this.#options.indexDir;
    if (!identity || dir === null) return false;
    try {
      const loaded = loadVectorIndex(dir, identity, state.index);
      if (!loaded) return false;
      if (loaded.seq > this.#maxSeq(state.tenantId))
        throw new Error('saved index is newer than the database');
      // Every vector the saved index should hold (rows unchanged since the save) must be in it. Rows are
      // streamed and checked in chunks: 100k rows read at once left ~30 MB of garbage at startup.
      const rows = this.#sql
        .get(
          `SELECT m.rid, coalesce(m.project, '') AS project FROM memories m JOIN memory_embeddings e ON e.rid = m.rid
           WHERE m.tenant_id = ? AND m.change_seq <= ? AND m.deleted_at IS NULL AND e.model = ?
             AND length(e.embedding) = ?`,
        )
        .raw(true)
        .iterate(state.tenantId, loaded.seq, state.model, state.dimensions) as IterableIterator<
        [number, string]
      >;
      const chunk = new BigUint64Array(LOAD_CHECK_CHUNK);
      let pending = 0;
      const check = () => {
        const present = state.index.contains(chunk.subarray(0, pending)) as boolean[];
        pending = 0;
        if (present.includes(false)) throw new Error('saved index lacks vectors the database holds');
      };
      let vectors = 0;
      for (const [rid, project] of rows) {
        state.projectOf.set(rid, project);
        state.projectCounts.set(project, (state.projectCounts.get(project) ?? 0) + 1);
        chunk[pending++] = BigInt(rid);
        vectors++;
        if (pending === LOAD_CHECK_CHUNK) check();
      }
      if (pending > 0) check();
      state.seq = loaded.seq;
      state.savedSeq = loaded.seq;
      state.loaded = true;
      this.#logger.info(
        { tenantId: state.tenantId, vectors, seq: loaded.seq },
        'vector index loaded from disk',
      );
      return true;
    } catch (error) {
      this.#logger.warn({ err: error, dir }, 'saved vector index not used; rebuilding it');
      return false;
    }
  }

  #newState(tenantId: string, model: string, dimensions: number): AnnState {
    return {
      index: this.#newIndex(dimensions),
      dimensions,
      seq: 0,
      savedSeq: 0,
      tenantId,
      model,
      projectOf: new Map(),
      projectCounts: new Map(),
      building: false,
      ready: false,
      loaded: false,
    };
  }

  #newIndex(dimensions: number): InstanceType<typeof usearch.Index> {
    return new usearch.Index({
      dimensions,
      metric: usearch.MetricKind.Cos,
      quantization: usearch.ScalarKind.I8,
      connectivity: this.#options.connectivity,
      expansion_add: this.#options.expansionAdd,
      expansion_search: this.#options.expansionSearch,
      multi: false,
    });
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
    const where = liveMemoryWhere(tenantId, now, filter);
    const rows = this.#sql
      .get(
        `SELECT e.rid AS rid, vec_distance_cosine(vec_int8(e.embedding), vec_int8(?)) AS distance
         FROM memory_embeddings e JOIN memories m ON m.rid = e.rid
         WHERE e.model = ? AND m.change_seq > ? AND ${where.sql}
         ORDER BY distance LIMIT ?`,
      )
      .all(vectorToBlob(embedding), model, afterSeq, ...where.params, limit) as {
      rid: number;
      distance: number;
    }[];
    return rows.map((r) => ({ rid: r.rid, similarity: 1 - r.distance }));
  }

  /** null when the ANN index cannot serve this filter well; else the share of the index it covers. */
  #annShare(state: AnnState, filter: MemoryFilter): number | null {
    const { project, ...rest } = filter;
    if (hasFilterCondition(rest)) return null;
    if (project === undefined) return 1;
    const total = state.projectOf.size;
    const share = total > 0 ? (state.projectCounts.get(project) ?? 0) / total : 0;
    return share >= ANN_MIN_SHARE ? share : null;
  }

  #searchAnn(
    state: AnnState,
    tenantId: string,
    embedding: Float32Array,
    filter: MemoryFilter,
    limit: number,
    now: string,
    share: number,
  ): VectorHit[] {
    const size = state.projectOf.size;
    if (size === 0) return [];
    const want = Math.min(size, Math.ceil((limit * this.#options.oversample) / share) + 8);
    const found = state.index.search(quantizeInt8(embedding), want, 1);
    const rids: number[] = [];
    for (let i = 0; i < found.keys.length; i++) rids.push(Number(found.keys[i]));
    if (rids.length === 0) return [];
    // Re-check liveness and filters, and score exactly, in one query over the short list.
    const where = liveMemoryWhere(tenantId, now, filter);
    const rows = this.#sql
      .get(
        // CROSS JOIN pins the join order: walk the short list, never scan the tenant's rows.
        `SELECT e.rid AS rid, vec_distance_cosine(vec_int8(e.embedding), vec_int8(?)) AS distance
         FROM json_each(?) j CROSS JOIN memory_embeddings e ON e.rid = j.value CROSS JOIN memories m ON m.rid = e.rid
         WHERE ${where.sql}
         ORDER BY distance LIMIT ?`,
      )
      .all(vectorToBlob(embedding), JSON.stringify(rids), ...where.params, limit) as {
      rid: number;
      distance: number;
    }[];
    return rows.map((r) => ({ rid: r.rid, similarity: 1 - r.distance }));
  }

  /** The tenant's ANN state; starts a background build when the tenant has grown past the threshold. */
  #annFor(tenantId: string, model: string, dimensions: number): AnnState | undefined {
    const key = stateKey(tenantId, model);
    const existing = this.#states.get(key);
    if (existing) return existing;
    if (this.#liveVectorCount(tenantId) < this.#options.annMinVectors) return undefined;
    const state = this.#ensureState(tenantId, model, dimensions);
    this.#buildInBackground(state);
    return state;
  }

  /**
   * Starts catching the index up off the caller's turn: a chunk takes tens of milliseconds, which the
   * search that noticed the backlog must not pay, and that search still reads the rows not yet indexed.
   */
  #buildInBackground(state: AnnState): void {
    if (state.building) return;
    state.building = true;
    new Promise((resolve) => setImmediate(resolve))
      .then(() => this.warm(state.tenantId, state.model, state.dimensions))
      .catch((error: unknown) =>
        this.#logger.error({ err: error, tenantId: state.tenantId }, 'vector index build failed'),
      )
      .finally(() => {
        state.building = false;
      });
  }

  /** Live memories of a tenant, re-counted at most every few seconds and only after a write. */
  #liveVectorCount(tenantId: string): number {
    const seq = this.#maxSeq(tenantId);
    const cached = this.#sizeChecks.get(tenantId);
    if (cached && (cached.seq === seq || Date.now() - cached.at < 5000)) return cached.count;
    const row = this.#sql
      .get('SELECT count(*) AS n FROM memories WHERE tenant_id = ? AND deleted_at IS NULL')
      .get(tenantId) as { n: number };
    this.#sizeChecks.set(tenantId, { seq, at: Date.now(), count: row.n });
    return row.n;
  }

  #maxSeq(tenantId: string): number {
    const row = this.#sql
      .get('SELECT max(change_seq) AS s FROM memories WHERE tenant_id = ?')
      .get(tenantId) as {
      s: number | null;
    };
    return row.s ?? 0;
  }

  #ensureState(tenantId: string, model: string, dimensions: number): AnnState {
    const key = stateKey(tenantId, model);
    let state = this.#states.get(key);
    if (!state) {
      state = this.#newState(tenantId, model, dimensions);
      // A load that fails part way leaves the state half filled: start over from the rows.
      if (!this.#load(state)) state = this.#newState(tenantId, model, dimensions);
      this.#states.set(key, state);
    }
    return state;
  }

  /**
   * Applies up to `max` pending changes of the tenant to its index. Returns true when the index is
   * up to date.
   */
  #catchUp(tenantId: string, model: string, state: AnnState, max: number): boolean {
    const rows = this.#sql
      .get(
        `SELECT m.rid, m.project, m.deleted_at, m.change_seq, e.model, e.embedding
         FROM memories m LEFT JOIN memory_embeddings e ON e.rid = m.rid
         WHERE m.tenant_id = ? AND m.change_seq > ? ORDER BY m.change_seq LIMIT ?`,
      )
      .all(tenantId, state.seq, max + 1) as ChangeRow[];
    const batch = rows.slice(0, max);
    const additions = this.#additions.reset(state.dimensions, batch.length);
    for (const row of batch) {
      this.#remove(state, row.rid);
      state.seq = row.change_seq;
      if (row.deleted_at !== null || !row.embedding || row.model !== model) continue;
      const vector = blobToInt8(row.embedding);
      if (vector.length !== state.dimensions) continue;
      additions.push(row.rid, vector);
      const project = row.project ?? '';
      state.projectOf.set(row.rid, project);
      state.projectCounts.set(project, (state.projectCounts.get(project) ?? 0) + 1);
    }
    additions.addTo(state.index);
    return rows.length <= max;
  }

  #remove(state: AnnState, rid: number): void {
    const key = BigInt(rid);
    const project = state.projectOf.get(rid);
    if (project === undefined) {
      // A loaded index can hold a vector whose row changed after the save: projectOf, rebuilt from rows
      // unchanged since, does not know it, but replaying the change must still replace it.
      if (state.loaded && state.index.contains(key)) state.index.remove(key);
      return;
    }
    state.index.remove(key);
    state.projectOf.delete(rid);
    state.projectCounts.set(project, (state.projectCounts.get(project) ?? 1) - 1);
  }
}
