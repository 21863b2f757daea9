import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../../core/logger.js';
import type { StatementCache } from './statement-cache.js';
import type { BuildJob } from './vector-index-builder.js';
import { type IndexIdentity, saveVectorIndex } from './vector-index-file.js';
import type { VectorIndexState } from './vector-index-state.js';
import type { VectorSearchOptions } from './vector-search-options.js';

/**
 * The files around a state's index: what a worker job is told (the database, the graph it starts from,
 * where to hand its result over and where the saved copy lives) and the saved copy written at close. Both
 * name the saved copy by the same identity, so they live together.
 */
export class VectorBuildJobs {
  readonly #sql: StatementCache;
  readonly #dbPath: string;
  readonly #options: VectorSearchOptions;
  readonly #logger: Logger;
  /** Where workers hand over snapshot files: one temp dir per instance, made on the first job. */
  #snapshotDir: string | null = null;

  constructor(sql: StatementCache, dbPath: string, options: VectorSearchOptions, logger: Logger) {
    this.#sql = sql;
    this.#dbPath = dbPath;
    this.#options = options;
    this.#logger = logger;
  }

  /** The worker job for the state, or null when no other connection can open the database. */
  jobFor(state: VectorIndexState, threads: number): BuildJob | null {
    // An in-memory database cannot be opened by another connection: it stays on exact search.
    if (this.#dbPath === ':memory:' || this.#dbPath === '') return null;
    const o = this.#options;
    const identity = this.#identity(state);
    this.#snapshotDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'brain-vectors-'));
    const graph = state.graph;
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
      base: graph ? { file: graph.file, seq: graph.seq } : null,
      persist:
        identity && o.indexDir !== null
          ? { dir: o.indexDir, identity, savedSeq: state.savedSeq, saveAfterChanges: o.saveAfterChanges }
          : null,
      snapshotDir: this.#snapshotDir,
      name: createHash('sha256').update(`${state.tenantId}\u0000${state.model}`).digest('hex').slice(0, 16),
      chunk: o.buildChunk,
      threads,
      matrixMin: o.matrixMinVectors,
    };
  }

  /**
   * Saves the state's graph when it is ahead of the saved copy (at shutdown only: a few hundred ms at 100k),
   * so that the next start loads it instead of rebuilding. A failure is logged, never thrown: it costs
   * only that rebuild.
   */
  saveGraph(state: VectorIndexState): void {
    const graph = state.graph;
    if (!graph || graph.seq <= state.savedSeq) return;
    const identity = this.#identity(state);
    const dir = this.#options.indexDir;
    if (!identity || dir === null) return;
    try {
      saveVectorIndex(dir, identity, graph.index, graph.seq);
      state.markSaved(graph.seq);
    } catch (error) {
      this.#logger.warn({ err: error, dir }, 'could not save the vector index; the next start rebuilds it');
    }
  }

  /** Removes the handed-over snapshot files (the saved copies stay). */
  close(): void {
    if (this.#snapshotDir) fs.rmSync(this.#snapshotDir, { recursive: true, force: true });
    this.#snapshotDir = null;
  }

  /** What a saved copy must match to be used; null without an index directory or before migration. */
  #identity(state: VectorIndexState): IndexIdentity | null {
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
}
