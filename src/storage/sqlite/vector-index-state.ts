import type { HnswSnapshot, MatrixSnapshot, VectorSnapshot } from './ann-index.js';

/**
 * Where the ANN index of one tenant and embedding model stands:
 *   absent   — no index and no job: searches run exact in SQL;
 *   building — the first build runs in a worker: searches use its exact matrix once posted, else SQL;
 *   ready    — an HNSW graph serves (rows changed after it, the tail, are searched exactly beside it);
 *   stale    — the graph still serves while a catch-up job builds its successor from it;
 *   failed   — the first build failed: searches run exact until `retryAt`, then a build is tried again.
 */
export type IndexStateKind = 'absent' | 'building' | 'ready' | 'stale' | 'failed';

/** Each state with only what it holds: a job while ready, or ready without a graph, cannot be written. */
type Phase =
  | { kind: 'absent' }
  | { kind: 'building'; job: Promise<void>; matrix: MatrixSnapshot | null }
  | { kind: 'ready'; graph: HnswSnapshot }
  | { kind: 'stale'; graph: HnswSnapshot; job: Promise<void> }
  | { kind: 'failed'; retryAt: number };

/** What moves a state: a job starting, and the three ways a job ends; release() is close. */
export type IndexEvent = 'start' | 'finish' | 'fail' | 'abandon' | 'release';

/**
 * The whole state machine: the state each event leads to from each state it is allowed in. Every move is
 * checked against it, and one it lacks throws (a scheduler bug, not a runtime condition). Why each exists:
 *   start    absent → building   the tenant grew past annMinVectors, or warm() asked
 *            failed → building   retryAt passed (a search or the watch tick), or warm() asked at once
 *            ready  → stale      the tail grew past inlineCatchUp: a catch-up starts from the graph
 *   finish   building → ready    the first graph replaces the matrix (or SQL)
 *            stale    → ready    the successor replaces the graph
 *   fail     building → failed   searches stay exact until retryAt rather than respawn a failing worker
 *            stale    → ready    the old graph keeps serving; the next search past the tail retries
 *   abandon  building → absent   the builder was closed under the job: no result, and no fault either
 *            stale    → ready
 *   release  any      → absent   close: frees what the state holds
 * While building, showMatrix() swaps what is served (the first build's exact copy) without a move.
 */
const TRANSITIONS: { readonly [E in IndexEvent]: Readonly<Partial<Record<IndexStateKind, IndexStateKind>>> } =
  {
    start: { absent: 'building', failed: 'building', ready: 'stale' },
    finish: { building: 'ready', stale: 'ready' },
    fail: { building: 'failed', stale: 'ready' },
    abandon: { building: 'absent', stale: 'ready' },
    release: { absent: 'absent', building: 'absent', ready: 'absent', stale: 'absent', failed: 'absent' },
  };

/** The older three-phase reading that describe() has always reported: failed reads absent, stale ready. */
const PHASE = {
  absent: 'absent',
  building: 'building',
  ready: 'ready',
  stale: 'ready',
  failed: 'absent',
} as const satisfies Record<IndexStateKind, 'absent' | 'building' | 'ready'>;

/** The index as it stands, for tests, metrics and logs. */
export interface VectorIndexView {
  /** Vectors and change_seq of the HNSW graph (0 without one). */
  vectors: number;
  seq: number;
  /** The change_seq of the copy saved in the index directory (0: none). */
  savedSeq: number;
  /** Whether a graph serves (ready or stale). */
  ready: boolean;
  loaded: boolean;
  phase: (typeof PHASE)[IndexStateKind];
  state: IndexStateKind;
  /** What searches use now beside the SQL tail: the first build's exact matrix, or the graph. */
  snapshot: 'matrix' | 'hnsw' | null;
  /** Whether a worker job runs for it (building or stale). */
  building: boolean;
}

/**
 * The ANN state machine of one tenant and embedding model. It owns the snapshot searches read and frees
 * each one it replaces; it knows nothing of workers or SQL, so the scheduler decides when to move it and
 * this class only checks that the move is one of TRANSITIONS. At most one job runs per state.
 */
export class VectorIndexState {
  readonly tenantId: string;
  readonly model: string;
  readonly dimensions: number;
  #phase: Phase = { kind: 'absent' };
  #savedSeq = 0;
  #loaded = false;

  constructor(tenantId: string, model: string, dimensions: number) {
    this.tenantId = tenantId;
    this.model = model;
    this.dimensions = dimensions;
  }

  get kind(): IndexStateKind {
    return this.#phase.kind;
  }

  /** What searches use beside the SQL tail, if anything. */
  get snapshot(): VectorSnapshot | null {
    const p = this.#phase;
    return p.kind === 'building' ? p.matrix : p.kind === 'ready' || p.kind === 'stale' ? p.graph : null;
  }

  /** The HNSW graph that serves (ready or stale), which the next job starts from. */
  get graph(): HnswSnapshot | null {
    const p = this.#phase;
    return p.kind === 'ready' || p.kind === 'stale' ? p.graph : null;
  }

  /** The running worker job (building or stale), which resolves once its outcome is applied. */
  get job(): Promise<void> | null {
    const p = this.#phase;
    return p.kind === 'building' || p.kind === 'stale' ? p.job : null;
  }

  /** The change_seq of the copy saved in the index directory (0: none). */
  get savedSeq(): number {
    return this.#savedSeq;
  }

  /** true once the index started from a saved copy rather than from the rows. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Whether a first build may start now: never tried, or failed and past its retry time. */
  firstBuildDue(now: number): boolean {
    const p = this.#phase;
    return p.kind === 'absent' || (p.kind === 'failed' && now >= p.retryAt);
  }

  /** A worker job started: a first build (absent, failed) or a catch-up of the graph (ready). */
  start(job: Promise<void>): void {
    const p = this.#phase;
    this.#apply(
      'start',
      p.kind === 'ready' ? { kind: 'stale', graph: p.graph, job } : { kind: 'building', job, matrix: null },
    );
  }

  /** A first build's exact copy serves until its graph is in; during a catch-up the graph is kept. */
  showMatrix(matrix: MatrixSnapshot): void {
    const p = this.#phase;
    if (p.kind !== 'building') return;
    p.matrix?.release();
    this.#phase = { ...p, matrix };
  }

  /** The job's graph replaces what served, which is freed. */
  finish(graph: HnswSnapshot, outcome: { savedSeq: number; loaded: boolean }): void {
    const previous = this.snapshot;
    this.#apply('finish', { kind: 'ready', graph });
    previous?.release();
    this.#savedSeq = outcome.savedSeq;
    this.#loaded ||= outcome.loaded;
  }

  /** The job failed: a first build waits for `retryAt`; a catch-up leaves the old graph serving. */
  fail(retryAt: number): void {
    const p = this.#phase;
    this.#apply('fail', p.kind === 'stale' ? { kind: 'ready', graph: p.graph } : { kind: 'failed', retryAt });
    if (p.kind === 'building') p.matrix?.release();
  }

  /** The job ended without a result or a fault (its builder closed): back to what served before it. */
  abandon(): void {
    const p = this.#phase;
    this.#apply('abandon', p.kind === 'stale' ? { kind: 'ready', graph: p.graph } : { kind: 'absent' });
    if (p.kind === 'building') p.matrix?.release();
  }

  /** The graph at `seq` was saved to the index directory (at close). */
  markSaved(seq: number): void {
    this.#savedSeq = seq;
  }

  /** Frees the snapshot; the state reads absent (at close, when the scheduler drops any job's outcome). */
  release(): void {
    const held = this.snapshot;
    this.#apply('release', { kind: 'absent' });
    held?.release();
  }

  view(): VectorIndexView {
    const graph = this.graph;
    return {
      vectors: graph?.size ?? 0,
      seq: graph?.seq ?? 0,
      savedSeq: this.#savedSeq,
      ready: graph !== null,
      loaded: this.#loaded,
      phase: PHASE[this.kind],
      state: this.kind,
      snapshot: this.snapshot?.kind ?? null,
      building: this.job !== null,
    };
  }

  /** Every move between states goes through here: only to what TRANSITIONS names for this event. */
  #apply(event: IndexEvent, next: Phase): void {
    const from = this.#phase.kind;
    if (TRANSITIONS[event][from] !== next.kind)
      throw new Error(`vector index state: no ${event} from ${from} to ${next.kind}`);
    this.#phase = next;
  }
}
