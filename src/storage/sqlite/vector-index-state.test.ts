import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HnswSnapshot, MatrixSnapshot, newHnswIndex } from './ann-index.js';
import { VectorIndexState } from './vector-index-state.js';

const DIMENSIONS = 8;
const HNSW = { connectivity: 8, expansionAdd: 32, expansionSearch: 32 };

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A real usearch graph of `size` vectors, saved to a temp file and viewed as the worker hands it over. */
function graph(seq: number, size = 4): HnswSnapshot {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-index-state-'));
  dirs.push(dir);
  const index = newHnswIndex(DIMENSIONS, HNSW);
  const keys = BigUint64Array.from({ length: size }, (_, i) => BigInt(i + 1));
  const vectors = Float32Array.from({ length: size * DIMENSIONS }, (_, i) => ((i * 7) % 11) - 5);
  index.add(keys, vectors, 1);
  const file = path.join(dir, `graph-${seq}.usearch`);
  index.save(file);
  return new HnswSnapshot(file, DIMENSIONS, HNSW, { seq, size, counts: [] });
}

function matrix(seq: number): MatrixSnapshot {
  return new MatrixSnapshot(seq, Float64Array.from([1, 2]), new Int8Array(2 * DIMENSIONS).fill(3), []);
}

/** A job promise as the scheduler hands over: the state only holds it, so a pending one will do. */
const job = () => new Promise<void>(() => {});

function readyState(first: HnswSnapshot): VectorIndexState {
  const state = new VectorIndexState('t', 'm', DIMENSIONS);
  state.start(job());
  state.finish(first, { savedSeq: 0, loaded: false });
  return state;
}

describe('vector index state machine', () => {
  it('moves a first build absent → building → ready, serving the matrix until the graph replaces it', () => {
    const state = new VectorIndexState('t', 'm', DIMENSIONS);
    expect(state.view()).toMatchObject({ state: 'absent', phase: 'absent', ready: false, snapshot: null });
    expect(state.firstBuildDue(0)).toBe(true);
    const running = job();
    state.start(running);
    expect(state.kind).toBe('building');
    expect(state.job).toBe(running);
    expect(state.firstBuildDue(0)).toBe(false);
    expect(state.snapshot).toBeNull();
    const copy = matrix(10);
    state.showMatrix(copy);
    expect(state.view()).toMatchObject({
      state: 'building',
      snapshot: 'matrix',
      building: true,
      ready: false,
    });
    expect(state.snapshot).toBe(copy);
    const built = graph(10);
    state.finish(built, { savedSeq: 10, loaded: true });
    expect(state.view()).toEqual({
      vectors: 4,
      seq: 10,
      savedSeq: 10,
      ready: true,
      loaded: true,
      phase: 'ready',
      state: 'ready',
      snapshot: 'hnsw',
      building: false,
    });
    expect(state.snapshot).toBe(built);
    expect(state.job).toBeNull();
  });

  it('serves the old graph while a catch-up runs (stale), then frees its file once the successor is in', () => {
    const first = graph(10);
    const state = readyState(first);
    state.start(job());
    expect(state.view()).toMatchObject({
      state: 'stale',
      phase: 'ready',
      ready: true,
      building: true,
      seq: 10,
    });
    // A catch-up of an empty graph may post a matrix: a matrix never replaces a graph.
    state.showMatrix(matrix(20));
    expect(state.snapshot).toBe(first);
    const second = graph(20, 6);
    state.finish(second, { savedSeq: 0, loaded: false });
    expect(state.view()).toMatchObject({ state: 'ready', seq: 20, vectors: 6, building: false });
    expect(fs.existsSync(first.file)).toBe(false);
    expect(fs.existsSync(second.file)).toBe(true);
  });

  it('keeps a failed first build exact until its retry time, then lets a build start again', () => {
    const state = new VectorIndexState('t', 'm', DIMENSIONS);
    state.start(job());
    state.showMatrix(matrix(10));
    state.fail(5000);
    expect(state.view()).toMatchObject({ state: 'failed', phase: 'absent', snapshot: null, building: false });
    expect(state.firstBuildDue(4999)).toBe(false);
    expect(state.firstBuildDue(5000)).toBe(true);
    state.start(job());
    expect(state.kind).toBe('building');
  });

  it('leaves the old graph serving when a catch-up fails or is abandoned', () => {
    const first = graph(10);
    const state = readyState(first);
    state.start(job());
    state.fail(5000);
    expect(state.kind).toBe('ready');
    expect(state.snapshot).toBe(first);
    expect(fs.existsSync(first.file)).toBe(true);
    state.start(job());
    state.abandon();
    expect(state.kind).toBe('ready');
    expect(state.snapshot).toBe(first);
  });

  it('returns an abandoned first build to absent, due for a build again at once', () => {
    const state = new VectorIndexState('t', 'm', DIMENSIONS);
    state.start(job());
    state.showMatrix(matrix(10));
    state.abandon();
    expect(state.view()).toMatchObject({ state: 'absent', snapshot: null, building: false });
    expect(state.firstBuildDue(0)).toBe(true);
  });

  it('rejects the moves the machine does not have, and stays where it was', () => {
    const fresh = new VectorIndexState('t', 'm', DIMENSIONS);
    expect(() => fresh.finish(graph(1), { savedSeq: 0, loaded: false })).toThrow(/no finish from absent/);
    expect(() => fresh.fail(1)).toThrow(/no fail from absent/);
    fresh.start(job());
    // At most one job per state: a second start while building is a scheduler bug.
    expect(() => fresh.start(job())).toThrow(/no start from building/);
    expect(fresh.kind).toBe('building');

    const ready = readyState(graph(10));
    expect(() => ready.fail(1)).toThrow(/no fail from ready/);
    expect(() => ready.abandon()).toThrow(/no abandon from ready/);
    ready.start(job());
    expect(() => ready.start(job())).toThrow(/no start from stale/);
    expect(ready.kind).toBe('stale');
  });

  it('releases from any state to absent, freeing the graph file', () => {
    const first = graph(10);
    const state = readyState(first);
    state.start(job());
    state.release();
    expect(state.view()).toMatchObject({ state: 'absent', snapshot: null, building: false, vectors: 0 });
    expect(state.job).toBeNull();
    expect(fs.existsSync(first.file)).toBe(false);
  });

  it('keeps loaded once the index came from a saved copy, and records a save at close', () => {
    const state = readyState(graph(10));
    state.start(job());
    state.finish(graph(20), { savedSeq: 10, loaded: true });
    state.start(job());
    state.finish(graph(30), { savedSeq: 10, loaded: false });
    expect(state.view()).toMatchObject({ loaded: true, savedSeq: 10, seq: 30 });
    state.markSaved(30);
    expect(state.savedSeq).toBe(30);
  });
});
