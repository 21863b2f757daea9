import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../../core/logger.js';
import { hasFilterCondition, type MemoryFilter } from '../../modules/memory/memory-filter.js';
import { AnnState, HnswSnapshot, MatrixSnapshot, type VectorSnapshot } from './ann-index.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { quantizeInt8, vectorToBlob } from './sqlite-memory-rows.js';
import { SqliteVectorExact, type VectorHit } from './sqlite-vector-exact.js';
import { StatementCache } from './statement-cache.js';
import { type BuildJob, BuildStopped, VectorIndexBuilder } from './vector-index-builder.js';
import { type IndexIdentity, saveVectorIndex } from './vector-index-file.js';

export type { VectorHit } from './sqlite-vector-exact.js';

export interface VectorSearchOptions {
  /** Below this many vectors in a tenant, exact search is fast enough and no ANN index is kept. */
  annMinVectors: number;
  /** Vectors per usearch add() call in the build worker (off the event loop, so only a memory knob). */
  buildChunk: number;
  /**
   * Up to this many pending changes (rows changed after the snapshot) are searched exactly in SQL beside
   * the snapshot; more start a catch-up job in the worker. Nothing is ever inserted on the event loop.
   */
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
   * Directory where each tenant's index is saved (by the build worker, and at close) and loaded from at
   * start, so that a restart does not rebuild it; null keeps indexes in temp files only.
   */
  indexDir: string | null;
  /** A build or catch-up that leaves the saved copy at least this many changes behind saves it. */
  saveAfterChanges: number;
  /** Threads a background build's inserts may use (0: all cores); warm() always uses all. */
  buildThreads: number;
  /** A first build of at least this many vectors serves an exact in-memory copy while the graph grows. */
  matrixMinVectors: number;
}

export const DEFAULT_VECTOR_SEARCH_OPTIONS: VectorSearchOptions = {
  // An exact SQL scan costs ~0.6 µs per vector; past 1,000 the HNSW index answers faster and as well.
  annMinVectors: 1000,
  buildChunk: 1024,
  // The tail is searched in SQL at ~0.6 µs per row: 512 pending rows cost ~0.3 ms per search.
  inlineCatchUp: 512,
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
  // One core for the build leaves the other to the event loop on a 2-core machine.
  buildThreads: 1,
  // Below ~4k vectors the SQL scan takes under ~2.5 ms; above, the matrix (~0.3 ms at 10k) pays for its copy.
  matrixMinVectors: 4096,
};

/** Share of a tenant a project must hold for a project-filtered search to use the tenant's snapshot. */
const ANN_MIN_SHARE = 0.3;

/** How often prepared tenants are checked for a build or catch-up due, so writes alone keep the index near. */
const WATCH_MS = 1000;

/** After a failed build, searches run exact this long before a build is tried again. */
const RETRY_MS = 30_000;

/** The ANN state of a tenant and embedding model. */
function stateKey(tenantId: string, model: string): string {
  return `${tenantId}\u0000${model}`;
}

/** The better of two hit lists, one entry per rid (the tail's, scored on the current row, wins), best first. */
function mergeHits(a: VectorHit[], tail: VectorHit[], limit: number): VectorHit[] {
  if (tail.length === 0) return a;
  const byRid = new Map<number, VectorHit>();
  for (const hit of a) byRid.set(hit.rid, hit);
  for (const hit of tail) byRid.set(hit.rid, hit);
  return [...byRid.values()].sort((x, y) => y.similarity - x.similarity).slice(0, limit);
}

/**
 * Vector search over memory_embeddings with sqlite-vec, accelerated for large tenants by an HNSW index
 * (usearch) that a worker thread builds from the rows (VectorIndexBuilder) and the main thread only
 * memory-maps. SQLite stays the only source of truth: rows changed after the snapshot (the tail) are
 * searched exactly beside it, so writes from other processes on the same file are seen at once, and every
 * candidate is re-checked and re-scored in SQL, so a stale entry can cost a slot but never returns a
 * deleted, expired, other-model or other-tenant memory.
 */
export class SqliteVectorSearch {
  readonly #sql: StatementCache;
  readonly #exact: SqliteVectorExact;
  readonly #options: VectorSearchOptions;
  readonly #logger: Logger;
  readonly #dbPath: string;
  readonly #builder: VectorIndexBuilder;
  readonly #states = new Map<string, AnnState>();
  readonly #sizeChecks = new Map<string, { seq: number; at: number; count: number }>();
  /** Tenants and models prepare() asked for: checked every WATCH_MS for a build or catch-up due. */
  readonly #watched = new Map<string, { tenantId: string; model: string; dimensions: number }>();
  #watch: NodeJS.Timeout | null = null;
  #snapshotDir: string | null = null;
  #closed = false;

  constructor(db: SqliteDatabase, logger: Logger, options: Partial<VectorSearchOptions> = {}) {
    this.#sql = new StatementCache(db);
    this.#exact = new SqliteVectorExact(this.#sql);
    this.#logger = logger;
    this.#options = { ...DEFAULT_VECTOR_SEARCH_OPTIONS, ...options };
    this.#dbPath = db.name;
    this.#builder = new VectorIndexBuilder(logger);
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
    const snapshot = state?.snapshot;
    if (state && snapshot) {
      const found = this.#searchSnapshot(state, snapshot, embedding, filter, limit, now);
      if (found) return found;
    }
    return {
      hits: this.#exact.search(tenantId, vectorToBlob(embedding), model, filter, limit, now),
      mode: 'exact',
    };
  }

  /**
   * The snapshot's nearest candidates re-scored in SQL, merged with the tail searched exactly; null when
   * the snapshot cannot serve the filter, or too few candidates survived (the caller then runs exact).
   */
  #searchSnapshot(
    state: AnnState,
    snapshot: VectorSnapshot,
    embedding: Float32Array,
    filter: MemoryFilter,
    limit: number,
    now: string,
  ): { hits: VectorHit[]; mode: 'exact' | 'approximate' } | null {
    const share = annShare(snapshot, filter);
    if (share === null) return null;
    const { tenantId, model } = state;
    const pending = this.#maxSeq(tenantId) - snapshot.seq;
    // A big tail (a bulk import) goes to the worker; meanwhile it is searched exactly.
    if (pending > this.#options.inlineCatchUp) void this.#schedule(state, this.#options.buildThreads);
    const query = quantizeInt8(embedding);
    const blob = Buffer.from(query.buffer, query.byteOffset, query.byteLength);
    const want = Math.ceil((limit * this.#options.oversample) / share) + 8;
    const rids = snapshot.candidates(query, want);
    let hits = this.#exact.rescore(tenantId, rids, blob, model, filter, limit, now);
    if (pending > 0)
      hits = mergeHits(
        hits,
        this.#exact.searchTail(tenantId, blob, model, filter, limit, now, snapshot.seq),
        limit,
      );
    // Too few survivors (a filter or many stale entries): the exact path still answers right.
    const expected = Math.min(limit, Math.floor(share * snapshot.size));
    if (hits.length < expected) return null;
    return { hits, mode: snapshot.kind === 'hnsw' ? 'approximate' : 'exact' };
  }

  /** Builds the ANN index of a tenant now (awaitable, in the worker on all cores), e.g. before a benchmark. */
  async warm(tenantId: string, model: string, dimensions: number): Promise<void> {
    const state = this.#ensureState(tenantId, model, dimensions);
    // A few rounds at most: writes landing during a round are caught up by the next one.
    for (let round = 0; round < 4 && !this.#closed; round++) {
      const snapshot = state.snapshot;
      if (state.phase === 'ready' && snapshot && this.#maxSeq(tenantId) <= snapshot.seq) return;
      await this.#schedule(state, 0);
      if (state.phase !== 'ready' && state.retryAt > Date.now()) return; // failed: searches stay exact
    }
  }

  /**
   * Starts building the tenant's ANN index in the background when the tenant is large enough, and keeps
   * watching it: a bulk import (writes without searches) then starts the build, and its catch-ups, while
   * it runs, not on the first recall after it.
   */
  prepare(tenantId: string, model: string, dimensions: number): void {
    if (this.#closed) return;
    this.#watched.set(stateKey(tenantId, model), { tenantId, model, dimensions });
    this.#watch ??= setInterval(() => this.#checkWatched(), WATCH_MS).unref();
    this.#annFor(tenantId, model, dimensions);
  }

  /** One watch tick: a max(change_seq) lookup per tenant, and a count only after writes below the threshold. */
  #checkWatched(): void {
    try {
      for (const { tenantId, model, dimensions } of this.#watched.values()) {
        const state = this.#annFor(tenantId, model, dimensions);
        const snapshot = state?.snapshot;
        if (state && snapshot && this.#maxSeq(tenantId) - snapshot.seq > this.#options.inlineCatchUp)
          void this.#schedule(state, this.#options.buildThreads);
      }
    } catch (error) {
      // A closed or failing database: searches report it; the watch tries again next tick.
      this.#logger.debug({ err: error }, 'vector index watch skipped a tick');
    }
  }

  /** The tenant's ANN index as it stands, or null when it has none (for tests, metrics and logs). */
  describe(
    tenantId: string,
    model: string,
  ): {
    vectors: number;
    seq: number;
    savedSeq: number;
    ready: boolean;
    loaded: boolean;
    phase: AnnState['phase'];
    /** What searches use now beside the SQL tail: the first build's exact matrix, or the graph. */
    snapshot: 'matrix' | 'hnsw' | null;
    building: boolean;
  } | null {
    const state = this.#states.get(stateKey(tenantId, model));
    if (!state) return null;
    const hnsw = state.snapshot instanceof HnswSnapshot ? state.snapshot : null;
    return {
      vectors: hnsw?.size ?? 0,
      seq: hnsw?.seq ?? 0,
      savedSeq: state.savedSeq,
      ready: state.phase === 'ready',
      loaded: state.loaded,
      phase: state.phase,
      snapshot: state.snapshot?.kind ?? null,
      building: state.job !== null,
    };
  }

  /** Whether the tenant's ANN index exists and has caught up once. */
  isReady(tenantId: string, model: string): boolean {
    return this.#states.get(stateKey(tenantId, model))?.phase === 'ready';
  }

  /** Worker threads still running (0 once close() has taken effect: see stopped()). */
  get runningWorkers(): number {
    return this.#builder.running;
  }

  /** Resolves once every worker thread has exited (after close(), or when idle). */
  stopped(): Promise<void> {
    return this.#builder.stopped();
  }

  /**
   * Terminates the build workers, saves every ready index that changed since it was last saved (a few
   * hundred ms at 100k, at shutdown only) and removes the snapshot files.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watch) clearInterval(this.#watch);
    this.#builder.close();
    for (const state of this.#states.values()) {
      const snapshot = state.snapshot;
      if (snapshot instanceof HnswSnapshot && snapshot.seq > state.savedSeq) this.#save(state, snapshot);
      state.release();
    }
    this.#states.clear();
    if (this.#snapshotDir) fs.rmSync(this.#snapshotDir, { recursive: true, force: true });
  }

  /**
   * The exact similarity to `embedding` of each given memory that is live and has a vector of `model`
   * (fusion weighs every candidate's similarity, also those the vector search did not bring).
   */
  similarities(
    tenantId: string,
    embedding: Float32Array,
    model: string,
    rids: number[],
    now: string,
  ): VectorHit[] {
    return this.#exact.rescore(
      tenantId,
      rids,
      vectorToBlob(embedding),
      model,
      { include_cold: true },
      rids.length,
      now,
    );
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

  #save(state: AnnState, snapshot: HnswSnapshot): void {
    const identity = this.#identity(state);
    const dir = this.#options.indexDir;
    if (!identity || dir === null) return;
    try {
      saveVectorIndex(dir, identity, snapshot.index, snapshot.seq);
      state.savedSeq = snapshot.seq;
    } catch (error) {
      this.#logger.warn({ err: error, dir }, 'could not save the vector index; the next start rebuilds it');
    }
  }

  /** The tenant's ANN state; starts a background build when the tenant has grown past the threshold. */
  #annFor(tenantId: string, model: string, dimensions: number): AnnState | undefined {
    let state = this.#states.get(stateKey(tenantId, model));
    if (!state) {
      if (this.#liveVectorCount(tenantId) < this.#options.annMinVectors) return undefined;
      state = this.#ensureState(tenantId, model, dimensions);
    }
    if (!state.snapshot && Date.now() >= state.retryAt)
      void this.#schedule(state, this.#options.buildThreads);
    return state;
  }

  #ensureState(tenantId: string, model: string, dimensions: number): AnnState {
    const key = stateKey(tenantId, model);
    let state = this.#states.get(key);
    if (!state) {
      state = new AnnState(tenantId, model, dimensions);
      this.#states.set(key, state);
    }
    return state;
  }

  /**
   * Runs a worker job for the state unless one runs already; resolves when it ends (never rejects). The
   * main thread's share: posting the job, then viewing the result (mmap, ~1-10 ms) and deleting the old file.
   */
  #schedule(state: AnnState, threads: number): Promise<void> {
    if (state.job) return state.job;
    if (this.#closed) return Promise.resolve();
    const job = this.#job(state, threads);
    if (!job) return Promise.resolve();
    if (state.phase === 'absent') state.phase = 'building';
    const current = () => !this.#closed && this.#states.get(stateKey(state.tenantId, state.model)) === state;
    state.job = this.#builder
      .run(job, (m) => {
        if (current()) state.install(new MatrixSnapshot(m.seq, m.rids, m.vectors, m.counts));
      })
      .then((ready) => {
        if (!current()) {
          fs.rmSync(ready.file, { force: true });
          return;
        }
        const hnsw = this.#options;
        state.install(new HnswSnapshot(ready.file, state.dimensions, hnsw, ready));
        state.savedSeq = ready.savedSeq;
        state.loaded ||= ready.loaded;
        if (ready.loaded)
          this.#logger.info(
            { tenantId: state.tenantId, seq: ready.savedSeq },
            'vector index loaded from disk',
          );
      })
      .catch((error: unknown) => {
        if (error instanceof BuildStopped || !current()) return;
        state.retryAt = Date.now() + RETRY_MS;
        if (state.phase !== 'ready') {
          state.release();
          state.phase = 'absent';
        }
        this.#logger.error(
          { err: error, tenantId: state.tenantId, model: state.model },
          'vector index build failed; searching exactly until it is retried',
        );
      })
      .finally(() => {
        state.job = null;
      });
    return state.job;
  }

  #job(state: AnnState, threads: number): BuildJob | null {
    // An in-memory database cannot be opened by another connection: it stays on exact search.
    if (this.#dbPath === ':memory:' || this.#dbPath === '') return null;
    const o = this.#options;
    const identity = this.#identity(state);
    this.#snapshotDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'brain-vectors-'));
    return {
      dbPath: this.#dbPath,
      busyTimeoutMs: 5000,
      tenantId: state.tenantId,
      model: state.model,
      dimensions: state.dimensions,
      hnsw: {
        connectivity: o.connectivity,
        expansionAdd: o.expansionAdd,
        expansionSearch: o.expansionSearch,
      },
      base: state.base,
      persist:
        identity && o.indexDir !== null
          ? { dir: o.indexDir, identity, savedSeq: state.savedSeq, saveAfterChanges: o.saveAfterChanges }
          : null,
      snapshotDir: this.#snapshotDir,
      name: createHash('sha256').update(stateKey(state.tenantId, state.model)).digest('hex').slice(0, 16),
      chunk: o.buildChunk,
      threads,
      matrixMin: o.matrixMinVectors,
    };
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
}

/** null when the snapshot cannot serve this filter well; else the share of the snapshot it covers. */
function annShare(snapshot: VectorSnapshot, filter: MemoryFilter): number | null {
  const { project, ...rest } = filter;
  if (hasFilterCondition(rest)) return null;
  if (project === undefined) return 1;
  const total = snapshot.size;
  const share = total > 0 ? (snapshot.projectCounts.get(project) ?? 0) / total : 0;
  return share >= ANN_MIN_SHARE ? share : null;
}
