import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newId } from '../../core/ids.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { createHashEmbedder } from '../../modules/embeddings/hash-embedder.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import { openSqliteDatabase } from './sqlite-database.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite } from './sqlite-migrations.js';
import { StatementCache } from './statement-cache.js';
import { RETRY_MS, VectorBuildScheduler } from './vector-build-scheduler.js';
import type { VectorIndexState } from './vector-index-state.js';
import { DEFAULT_VECTOR_SEARCH_OPTIONS, type VectorSearchOptions } from './vector-search-options.js';

const embedder = createHashEmbedder(256);
const MODEL = embedder.model;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** A fake at the outer edge: a clock that moves only when the test says, so retry and count ages are exact. */
function fixedClock() {
  const clock = { at: 1_000_000, now: () => clock.at };
  return clock;
}

/** A logger that keeps what it is told (an outer-edge fake, to assert that a failure is logged). */
function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const none = () => {};
  const logger = {
    errors,
    debug: none,
    info: none,
    warn: none,
    error: (_: object, msg = '') => errors.push(msg),
  };
  return { ...logger, child: () => logger as unknown as Logger };
}

/** A real database file, a store to write it with (its own index never built) and a scheduler over it. */
function setup(options: Partial<VectorSearchOptions> = {}, logger: Logger = silentLogger, dir?: string) {
  const home = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'brain-scheduler-test-'));
  if (!dir) cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  const file = path.join(home, 'brain.db');
  const db = openSqliteDatabase(file, { busyTimeoutMs: 5000, cacheSizeMb: 16 });
  migrateSqlite(db);
  const store = new SqliteMemoryStore(db, silentLogger, {
    vectors: { annMinVectors: Number.MAX_SAFE_INTEGER },
  });
  const clock = fixedClock();
  const all = { ...DEFAULT_VECTOR_SEARCH_OPTIONS, annMinVectors: 100, inlineCatchUp: 50, ...options };
  const scheduler = new VectorBuildScheduler(new StatementCache(db), db.name, logger, all, clock.now);
  let written = 0;
  const insert = async (count: number, tenantId = 't') => {
    const texts = Array.from({ length: count }, (_, i) => `entry ${written + i} amber basalt tag${i % 37}`);
    written += count;
    const vectors = await embedder.embed(texts);
    const rows = texts.map((content, i) =>
      newMemoryRow(content, { id: newId('mem'), embedding: vectors[i] ?? null, embedding_model: MODEL }),
    );
    await store.insert({ tenantId }, rows);
  };
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    scheduler.close();
    store.vectors.close();
    db.close();
  };
  cleanups.push(close);
  return { file, home, db, scheduler, clock, insert, close };
}

/** Waits for the state's job (if any) to land. */
async function landed(state: VectorIndexState): Promise<void> {
  await state.job;
}

describe('vector build scheduling', () => {
  it('tracks no state below annMinVectors, re-counts only after the count ages, then runs one first build', async () => {
    const s = setup();
    await s.insert(60);
    expect(s.scheduler.stateFor('t', MODEL, 256)).toBeUndefined();
    await s.insert(60);
    // Writes alone do not re-count within the count's age: searches stay exact a few seconds longer.
    expect(s.scheduler.stateFor('t', MODEL, 256)).toBeUndefined();
    s.clock.at += 5000;
    const state = s.scheduler.stateFor('t', MODEL, 256) as VectorIndexState;
    expect(state.kind).toBe('building');
    const job = state.job;
    // Every later search meets the same job: one worker per state.
    for (let i = 0; i < 5; i++) expect(s.scheduler.stateFor('t', MODEL, 256)?.job).toBe(job);
    expect(s.scheduler.runningWorkers).toBe(1);
    await landed(state);
    expect(state.view()).toMatchObject({ state: 'ready', vectors: 120, building: false });
  });

  it('leaves a tail within inlineCatchUp to the search, and starts a catch-up from the graph past it', async () => {
    const s = setup();
    await s.insert(120);
    await s.scheduler.warm('t', MODEL, 256);
    const state = s.scheduler.get('t', MODEL) as VectorIndexState;
    const first = state.graph;
    await s.insert(50);
    expect(s.scheduler.tail(state, first!)).toBe(50);
    expect(state.view()).toMatchObject({ state: 'ready', building: false });
    await s.insert(1);
    expect(s.scheduler.tail(state, first!)).toBe(51);
    expect(state.view()).toMatchObject({ state: 'stale', building: true, seq: first!.seq });
    expect(state.snapshot).toBe(first);
    await landed(state);
    expect(state.view()).toMatchObject({ state: 'ready', vectors: 171, seq: first!.seq + 51 });
  });

  it('catches up a watched tenant on a watch tick from writes alone, and leaves others to their searches', async () => {
    const s = setup();
    await s.insert(120, 't');
    await s.insert(120, 'other');
    await s.scheduler.warm('t', MODEL, 256);
    await s.scheduler.warm('other', MODEL, 256);
    s.scheduler.watch('t', MODEL, 256);
    await s.insert(60, 't');
    await s.insert(60, 'other');
    s.scheduler.tick();
    const watched = s.scheduler.get('t', MODEL) as VectorIndexState;
    expect(watched.kind).toBe('stale');
    expect(s.scheduler.get('other', MODEL)?.kind).toBe('ready');
    await landed(watched);
    expect(watched.view()).toMatchObject({ state: 'ready', vectors: 180 });
  });

  it('keeps a failed first build exact until its retry time, then builds again', async () => {
    const logger = recordingLogger();
    const s = setup({}, logger);
    await s.insert(120);
    // The open connection keeps its file; the worker, opening the path, finds nothing there.
    fs.renameSync(s.file, `${s.file}.moved`);
    const state = s.scheduler.stateFor('t', MODEL, 256) as VectorIndexState;
    await landed(state);
    expect(state.kind).toBe('failed');
    expect(logger.errors).toContain('vector index build failed; searching exactly until it is retried');
    fs.renameSync(`${s.file}.moved`, s.file);
    s.clock.at += RETRY_MS - 1;
    expect(s.scheduler.stateFor('t', MODEL, 256)?.view()).toMatchObject({ state: 'failed', building: false });
    s.clock.at += 1;
    expect(s.scheduler.stateFor('t', MODEL, 256)?.kind).toBe('building');
    await landed(state);
    expect(state.view()).toMatchObject({ state: 'ready', vectors: 120 });
  });

  it('lets warm() retry a failed first build at once, whatever the retry time', async () => {
    const s = setup();
    await s.insert(120);
    fs.renameSync(s.file, `${s.file}.moved`);
    await s.scheduler.warm('t', MODEL, 256);
    expect(s.scheduler.get('t', MODEL)?.kind).toBe('failed');
    fs.renameSync(`${s.file}.moved`, s.file);
    await s.scheduler.warm('t', MODEL, 256);
    expect(s.scheduler.get('t', MODEL)?.view()).toMatchObject({ state: 'ready', vectors: 120 });
  });

  it('saves at close a graph ahead of its saved copy, and the next start loads it', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-scheduler-test-'));
    cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
    const indexDir = path.join(home, 'brain.db.vectors');
    // The worker itself never saves here: only close() can have written the copy.
    const options = { indexDir, saveAfterChanges: Number.MAX_SAFE_INTEGER };
    const a = setup(options, silentLogger, home);
    await a.insert(120);
    await a.scheduler.warm('t', MODEL, 256);
    const built = a.scheduler.get('t', MODEL)?.view();
    expect(built).toMatchObject({ state: 'ready', savedSeq: 0 });
    expect(fs.existsSync(indexDir)).toBe(false);
    a.close();
    expect(a.scheduler.get('t', MODEL)).toBeUndefined();
    expect(fs.readdirSync(indexDir).sort()).toEqual([
      expect.stringMatching(/\.json$/),
      expect.stringMatching(/\.usearch$/),
    ]);
    const b = setup(options, silentLogger, home);
    await b.scheduler.warm('t', MODEL, 256);
    expect(b.scheduler.get('t', MODEL)?.view()).toMatchObject({
      state: 'ready',
      loaded: true,
      savedSeq: built?.seq,
      vectors: 120,
    });
  });
});
