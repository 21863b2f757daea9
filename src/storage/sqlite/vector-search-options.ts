/**
 * How the SQLite vector search trades exactness, memory and build work. One type for the search path, the
 * build scheduler and the worker jobs, which all read it; the defaults carry what they were tuned on.
 */
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
  /**
   * Bytes of stored vectors a store keeps in memory for re-scoring (all tenants together), so that a
   * search reads each candidate's change_seq instead of its vector blob; past it, misses read SQL.
   */
  rescoreCacheBytes: number;
}

/** The settings used where the configuration leaves one out. */
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
  // 100,000 vectors of 256 dimensions take ~27 MB (268 bytes a row, grown by half: up to ~36 MB); 64 MiB
  // holds every vector of a 100k tenant at up to 384 dimensions, and fewer (the most recalled) above.
  rescoreCacheBytes: 64 * 1024 * 1024,
};
