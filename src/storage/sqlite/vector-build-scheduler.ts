import fs from 'node:fs';
import type { Logger } from '../../core/logger.js';
import { HnswSnapshot, MatrixSnapshot, type VectorSnapshot } from './ann-index.js';
import type { StatementCache } from './statement-cache.js';
import { VectorBuildJobs } from './vector-build-job.js';
import { BuildStopped, VectorIndexBuilder } from './vector-index-builder.js';
import { VectorIndexState } from './vector-index-state.js';
import type { VectorSearchOptions } from './vector-search-options.js';
import { VectorTenantStats } from './vector-tenant-stats.js';

/** How often watched tenants are checked for a build or catch-up due, so writes alone keep the index near. */
const WATCH_MS = 1000;

/** After a failed first build, searches run exact this long before a build is tried again. */
export const RETRY_MS = 30_000;

function stateKey(tenantId: string, model: string): string {
  return `${tenantId}\u0000${model}`;
}

/**
 * Decides when a worker job runs for each tenant and model, and lands its outcome on the state machine
 * (VectorIndexState). A first build starts once a tenant holds annMinVectors live memories, or after a
 * failed one once its retry time passed; a catch-up starts once the tail grows past inlineCatchUp, seen by
 * a search or by the watch tick of a prepared tenant. At most one job runs per state; warm() runs them at
 * once, on all cores, and awaits them.
 */
export class VectorBuildScheduler {
  readonly #options: VectorSearchOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #stats: VectorTenantStats;
  readonly #jobs: VectorBuildJobs;
  readonly #builder: VectorIndexBuilder;
  readonly #states = new Map<string, VectorIndexState>();
  /** Tenants and models watch() was asked for: checked every WATCH_MS. */
  readonly #watched = new Map<string, { tenantId: string; model: string; dimensions: number }>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  /** `now` is the clock retry times and count ages are read on (a fixed one in tests). */
  constructor(
    sql: StatementCache,
    dbPath: string,
    logger: Logger,
    options: VectorSearchOptions,
    now: () => number = Date.now,
  ) {
    this.#options = options;
    this.#logger = logger;
    this.#now = now;
    this.#stats = new VectorTenantStats(sql, now);
    this.#jobs = new VectorBuildJobs(sql, dbPath, options, logger);
    this.#builder = new VectorIndexBuilder(logger);
  }

  /** The state, if the tenant has one; never creates one or starts a job. */
  get(tenantId: string, model: string): VectorIndexState | undefined {
    return this.#states.get(stateKey(tenantId, model));
  }

  /**
   * The tenant's state, created once it holds annMinVectors live memories (below that, none: exact search
   * is fast enough); starts its first build when one is due.
   */
  stateFor(tenantId: string, model: string, dimensions: number): VectorIndexState | undefined {
    let state = this.get(tenantId, model);
    if (!state) {
      if (this.#stats.liveCount(tenantId) < this.#options.annMinVectors) return undefined;
      state = this.#ensure(tenantId, model, dimensions);
    }
    if (state.firstBuildDue(this.#now())) void this.#schedule(state, this.#options.buildThreads);
    return state;
  }

  /**
   * The rows changed after `snapshot`, which a search must scan in SQL beside it. Past inlineCatchUp (a
   * bulk import) a catch-up job starts, so that later searches do not keep scanning them.
   */
  tail(state: VectorIndexState, snapshot: VectorSnapshot): number {
    const pending = this.#stats.maxSeq(state.tenantId) - snapshot.seq;
    if (pending > this.#options.inlineCatchUp) void this.#schedule(state, this.#options.buildThreads);
    return pending;
  }

  /** Builds the tenant's index now, whatever its size and retry time, and resolves once it is caught up. */
  async warm(tenantId: string, model: string, dimensions: number): Promise<void> {
    const state = this.#ensure(tenantId, model, dimensions);
    // A few rounds at most: writes landing during a round are caught up by the next one.
    for (let round = 0; round < 4 && !this.#closed; round++) {
      const graph = state.graph;
      if (graph && this.#stats.maxSeq(tenantId) <= graph.seq) return;
      await this.#schedule(state, 0);
      if (state.kind === 'failed') return; // searches stay exact until the retry
    }
  }

  /**
   * Keeps checking the tenant every WATCH_MS: a bulk import (writes without searches) then starts the
   * build, and its catch-ups, while it runs, not on the first recall after it.
   */
  watch(tenantId: string, model: string, dimensions: number): void {
    if (this.#closed) return;
    this.#watched.set(stateKey(tenantId, model), { tenantId, model, dimensions });
    this.#timer ??= setInterval(() => this.tick(), WATCH_MS).unref();
    this.stateFor(tenantId, model, dimensions);
  }

  /** One watch check of every watched tenant: a max(change_seq) lookup each, and a count only after writes. */
  tick(): void {
    try {
      for (const { tenantId, model, dimensions } of this.#watched.values()) {
        const state = this.stateFor(tenantId, model, dimensions);
        const snapshot = state?.snapshot;
        if (state && snapshot) this.tail(state, snapshot);
      }
    } catch (error) {
      // A closed or failing database: searches report it; the watch tries again next tick.
      this.#logger.debug({ err: error }, 'vector index watch skipped a tick');
    }
  }

  /** Worker threads still running (0 once close() has taken effect: see stopped()). */
  get runningWorkers(): number {
    return this.#builder.running;
  }

  /** Resolves once every worker thread has exited. */
  stopped(): Promise<void> {
    return this.#builder.stopped();
  }

  /** Stops the watch and the workers, saves each graph ahead of its saved copy and frees every state. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#builder.close();
    for (const state of this.#states.values()) {
      this.#jobs.saveGraph(state);
      state.release();
    }
    this.#states.clear();
    this.#jobs.close();
  }

  #ensure(tenantId: string, model: string, dimensions: number): VectorIndexState {
    const key = stateKey(tenantId, model);
    let state = this.#states.get(key);
    if (!state) {
      state = new VectorIndexState(tenantId, model, dimensions);
      this.#states.set(key, state);
    }
    return state;
  }

  /**
   * Runs a worker job for the state unless one runs already; resolves when its outcome has landed (never
   * rejects). The main thread's share: posting the job, then viewing the result (mmap, ~1-10 ms).
   */
  #schedule(state: VectorIndexState, threads: number): Promise<void> {
    if (state.job) return state.job;
    if (this.#closed) return Promise.resolve();
    const job = this.#jobs.jobFor(state, threads);
    if (!job) return Promise.resolve();
    // After close (the state released, the map cleared) an outcome lands nowhere: its file is removed.
    const current = () => !this.#closed && this.get(state.tenantId, state.model) === state;
    const running = this.#builder
      .run(job, (m) => {
        if (current()) state.showMatrix(new MatrixSnapshot(m.seq, m.rids, m.vectors, m.counts));
      })
      .then((ready) => {
        if (!current()) return fs.rmSync(ready.file, { force: true });
        state.finish(new HnswSnapshot(ready.file, state.dimensions, this.#options, ready), ready);
        if (ready.loaded)
          this.#logger.info(
            { tenantId: state.tenantId, seq: ready.savedSeq },
            'vector index loaded from disk',
          );
      })
      .catch((error: unknown) => {
        if (!current()) return;
        if (error instanceof BuildStopped) return state.abandon();
        state.fail(this.#now() + RETRY_MS);
        this.#logger.error(
          { err: error, tenantId: state.tenantId, model: state.model },
          'vector index build failed; searching exactly until it is retried',
        );
      });
    state.start(running);
    return running;
  }
}
