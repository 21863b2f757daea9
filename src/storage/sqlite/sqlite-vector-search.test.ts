import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newId } from '../../core/ids.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { createHashEmbedder } from '../../modules/embeddings/hash-embedder.js';
import type { NewMemory } from '../../modules/memory/memory-store.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import { openSqliteDatabase } from './sqlite-database.js';
import { vectorToBlob as vectorBlob } from './sqlite-memory-rows.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite } from './sqlite-migrations.js';
import type { VectorSearchOptions } from './sqlite-vector-search.js';

const dirs: string[] = [];
function tempDb(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-vectors-test-'));
  dirs.push(dir);
  return path.join(dir, 'brain.db');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A logger that keeps what it is told (an outer-edge fake, to assert that a failure is logged). */
function recordingLogger(): Logger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at =
    (level: string) =>
    (_obj: object, msg = '') =>
      lines.push({ level, msg });
  const logger = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { ...logger, child: () => logger as unknown as Logger };
}

function openStore(file: string, options: Partial<VectorSearchOptions> = {}, logger: Logger = silentLogger) {
  const db = openSqliteDatabase(file, { busyTimeoutMs: 5000, cacheSizeMb: 16 });
  migrateSqlite(db);
  const store = new SqliteMemoryStore(db, logger, { vectors: options });
  const ridOf = (id: string) =>
    (db.prepare('SELECT rid FROM memories WHERE id = ?').get(id) as { rid: number }).rid;
  const close = () => {
    store.vectors.close();
    db.close();
  };
  return { db, store, vectors: store.vectors, ridOf, close };
}

const embedder = createHashEmbedder(256);
const MODEL = embedder.model;
const NOW = '2026-06-01T12:00:00.000Z';
const scope = { tenantId: 't' };

const words =
  'amber basalt cobalt dune ember fjord granite harbor indigo jade krill lagoon mesa nimbus onyx prairie quartz reef'.split(
    ' ',
  );
/** Distinct texts: every one has its own number and a mix of words, so its own vector is its nearest. */
function text(i: number): string {
  const w = (n: number) => words[(i * 7 + n * 11 + Math.floor(i / (n + 2))) % words.length];
  return `entry ${i} ${w(1)} ${w(2)} ${w(3)} tag${i % 89}`;
}

async function rows(texts: string[], model = MODEL): Promise<NewMemory[]> {
  const vectors = await embedder.embed(texts);
  return texts.map((content, i) =>
    newMemoryRow(content, { id: newId('mem'), embedding: vectors[i] ?? null, embedding_model: model }),
  );
}

async function embed(t: string): Promise<Float32Array> {
  return (await embedder.embed([t]))[0] as Float32Array;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('sqlite vector search (worker-built index)', () => {
  it('answers from the worker-built index as well as exact search on a known set', async () => {
    const s = openStore(tempDb(), { annMinVectors: 100 });
    const texts = Array.from({ length: 2000 }, (_, i) => text(i));
    await s.store.insert(scope, await rows(texts));
    await s.vectors.warm(scope.tenantId, MODEL, 256);
    expect(s.vectors.describe(scope.tenantId, MODEL)).toMatchObject({ ready: true, vectors: 2000 });
    let asGood = 0;
    let total = 0;
    for (let q = 0; q < 40; q++) {
      const query = await embed(`${words[q % words.length]} ${words[(q * 5) % words.length]} tag${q}`);
      const approx = s.vectors.search(scope.tenantId, query, MODEL, {}, 10, NOW);
      const exact = s.vectors.searchExact(scope.tenantId, query, MODEL, {}, 10, NOW);
      expect(approx.mode).toBe('approximate');
      // Tie-aware: any hit as similar as the 10th exact one is a right answer.
      const floor = (exact.at(-1)?.similarity ?? 0) - 1e-6;
      asGood += approx.hits.filter((h) => h.similarity >= floor).length;
      total += exact.length;
    }
    expect(asGood / total).toBeGreaterThanOrEqual(0.9);
    s.close();
  });

  it('keeps answering right during a bulk import while the worker builds and catches up', async () => {
    // The first search starts a first build (over 500 rows: with an exact matrix), later ones catch-ups.
    const s = openStore(tempDb(), { annMinVectors: 0, inlineCatchUp: 100, matrixMinVectors: 300 });
    const written: NewMemory[] = [];
    const seen = new Set<string>();
    for (let batch = 0; batch < 26; batch++) {
      const size = batch === 0 ? 500 : 100;
      const next = await rows(Array.from({ length: size }, (_, i) => text(written.length + i)));
      await s.store.insert(scope, next);
      written.push(...next);
      // Every committed row is found first by its own text, whatever serves the search at that moment.
      for (const pick of [written.length - 1, Math.floor(written.length / 2), batch * 7]) {
        const target = written[pick] as NewMemory;
        const found = s.vectors.search(scope.tenantId, await embed(target.content), MODEL, {}, 5, NOW);
        expect(found.hits[0]?.rid).toBe(s.ridOf(target.id));
        expect(found.hits[0]?.similarity).toBeCloseTo(1, 3);
      }
      const state = s.vectors.describe(scope.tenantId, MODEL);
      seen.add(`${state?.phase}/${state?.snapshot}`);
      // Once, mid-import, let the first build finish, so later batches meet the graph and its catch-ups.
      if (batch === 10)
        while (!s.vectors.isReady(scope.tenantId, MODEL)) {
          await tick();
          const now = s.vectors.describe(scope.tenantId, MODEL);
          seen.add(`${now?.phase}/${now?.snapshot}`);
        }
      await tick();
    }
    await s.vectors.warm(scope.tenantId, MODEL, 256);
    expect(s.vectors.describe(scope.tenantId, MODEL)).toMatchObject({ ready: true, vectors: 3000 });
    // The searches above met the first build's exact matrix and the graph (with a tail beside it).
    expect(seen).toContain('building/matrix');
    expect(seen).toContain('ready/hnsw');
    const last = written.at(-1) as NewMemory;
    const found = s.vectors.search(scope.tenantId, await embed(last.content), MODEL, {}, 5, NOW);
    expect(found.mode).toBe('approximate');
    expect(found.hits[0]?.rid).toBe(s.ridOf(last.id));
    s.close();
  });

  it('falls back to exact search and logs when the worker cannot read the database', async () => {
    const file = tempDb();
    const logger = recordingLogger();
    const s = openStore(file, { annMinVectors: 50 }, logger);
    const written = await rows(Array.from({ length: 120 }, (_, i) => text(i)));
    await s.store.insert(scope, written);
    // The open connection keeps its file; the worker, opening the path, finds nothing there.
    fs.renameSync(file, `${file}.moved`);
    await s.vectors.warm(scope.tenantId, MODEL, 256);
    expect(logger.lines.some((l) => l.level === 'error' && /vector index build failed/.test(l.msg))).toBe(
      true,
    );
    // The older phase still reads absent; the state machine says why, and that a retry waits.
    expect(s.vectors.describe(scope.tenantId, MODEL)).toMatchObject({
      ready: false,
      phase: 'absent',
      state: 'failed',
    });
    const target = written[42] as NewMemory;
    const found = s.vectors.search(scope.tenantId, await embed(target.content), MODEL, {}, 3, NOW);
    expect(found.mode).toBe('exact');
    expect(found.hits[0]?.rid).toBe(s.ridOf(target.id));
    s.close();
  });

  it('close() terminates a running build and leaves no worker behind', async () => {
    const s = openStore(tempDb(), { annMinVectors: 100 });
    await s.store.insert(scope, await rows(Array.from({ length: 3000 }, (_, i) => text(i))));
    const warming = s.vectors.warm(scope.tenantId, MODEL, 256);
    await tick();
    expect(s.vectors.runningWorkers).toBe(1);
    s.close();
    await s.vectors.stopped();
    expect(s.vectors.runningWorkers).toBe(0);
    await expect(warming).resolves.toBeUndefined();
    expect(s.vectors.describe(scope.tenantId, MODEL)).toBeNull();
  });

  it('never returns vectors of another model, in the index or in its tail', async () => {
    const s = openStore(tempDb(), { annMinVectors: 100 });
    const texts = Array.from({ length: 600 }, (_, i) => text(i));
    const written = await rows(texts);
    await s.store.insert(scope, written);
    await s.vectors.warm(scope.tenantId, MODEL, 256);
    // Re-embed a third of the rows with another model (same vectors, so only the model tells them apart).
    const moved = written.filter((_, i) => i % 3 === 0);
    for (const m of moved)
      await s.store.update(
        scope,
        { id: m.id },
        { embedding: m.embedding, embedding_model: 'other-model' },
        NOW,
      );
    const movedRids = new Set(moved.map((m) => s.ridOf(m.id)));
    const check = async () => {
      for (const m of moved.slice(0, 20)) {
        const q = await embed(m.content);
        const found = s.vectors.search(scope.tenantId, q, MODEL, {}, 10, NOW);
        expect(found.hits.length).toBe(10);
        expect(found.hits.some((h) => movedRids.has(h.rid))).toBe(false);
        const other = s.vectors.search(scope.tenantId, q, 'other-model', {}, 10, NOW);
        expect(other.hits.every((h) => movedRids.has(h.rid))).toBe(true);
        expect(other.hits[0]?.rid).toBe(s.ridOf(m.id));
      }
    };
    await check(); // the moved rows are in the tail, the stale index still holds their old entries
    await s.vectors.warm(scope.tenantId, MODEL, 256);
    expect(s.vectors.describe(scope.tenantId, MODEL)?.vectors).toBe(600 - moved.length);
    await check(); // after the worker caught up
    s.close();
  });
});

describe('sqlite vector search: re-scoring from vectors kept in memory', () => {
  /** Two connections on one file, as two worker processes have: each with its own stores and caches. */
  async function twoProcesses(count: number) {
    const file = tempDb();
    const a = openStore(file, { annMinVectors: 100 });
    const b = openStore(file, { annMinVectors: 100 });
    const written = await rows(Array.from({ length: count }, (_, i) => text(i)));
    await a.store.insert(scope, written);
    await a.vectors.warm(scope.tenantId, MODEL, 256);
    const seqOf = (id: string) =>
      (a.db.prepare('SELECT change_seq FROM memories WHERE id = ?').pluck().get(id) as number) ?? 0;
    return { a, b, written, seqOf };
  }

  it('scores what SQL scores, to the bit, from SQL first and from memory after', async () => {
    const { a, b } = await twoProcesses(1200);
    for (let q = 0; q < 10; q++) {
      const query = await embed(`${words[q]} ${words[(q * 3) % words.length]} tag${q}`);
      const first = a.vectors.search(scope.tenantId, query, MODEL, {}, 10, NOW);
      const again = a.vectors.search(scope.tenantId, query, MODEL, {}, 10, NOW);
      expect(again.hits).toEqual(first.hits);
      const sql = new Map(
        (
          a.db
            .prepare(
              `SELECT e.rid AS rid, 1 - vec_distance_cosine(vec_int8(e.embedding), vec_int8(?)) AS s
               FROM json_each(?) j JOIN memory_embeddings e ON e.rid = j.value`,
            )
            .all(vectorBlob(query), JSON.stringify(first.hits.map((h) => h.rid))) as {
            rid: number;
            s: number;
          }[]
        ).map((r) => [r.rid, r.s]),
      );
      for (const hit of again.hits) expect(hit.similarity).toBe(sql.get(hit.rid));
    }
    expect(a.vectors.cachedVectorBytes).toBeGreaterThan(0);
    a.close();
    b.close();
  });

  it("sees another process's changes at once: a new vector is scored as it now is, a forgotten row is gone", async () => {
    const { a, b, written, seqOf } = await twoProcesses(1200);
    const target = written[321] as NewMemory;
    const rid = a.ridOf(target.id);
    const query = await embed(target.content);
    const before = a.vectors.search(scope.tenantId, query, MODEL, {}, 5, NOW);
    expect(before.hits[0]).toMatchObject({ rid });
    expect(before.hits[0]?.similarity).toBeCloseTo(1, 3);
    const oldSeq = seqOf(target.id);
    // The other process gives the memory a far vector; the snapshot still holds the old one near the query.
    const far = await embed('zzz unrelated words nowhere near');
    await b.store.update(scope, { id: target.id }, { embedding: far, embedding_model: MODEL }, NOW);
    // Rows moved next to the query fill the exact tail's top 5, so only the re-scoring of the snapshot's
    // candidates can tell what the target holds now.
    for (const m of written.slice(400, 408))
      await b.store.update(scope, { id: m.id }, { embedding: query, embedding_model: MODEL }, NOW);
    const after = a.vectors.search(scope.tenantId, query, MODEL, {}, 5, NOW);
    expect(after.hits.find((h) => h.rid === rid)?.similarity ?? -1).toBeLessThan(0.9);
    expect(after.hits[0]?.rid).not.toBe(rid);
    // The text stage's row versions: the old seq is re-read from SQL, the current one answers from memory.
    const exactNow = b.vectors.similarities(
      scope.tenantId,
      query,
      MODEL,
      [{ rid, seq: seqOf(target.id) }],
      NOW,
    );
    expect(a.vectors.similarities(scope.tenantId, query, MODEL, [{ rid, seq: oldSeq }], NOW)).toEqual(
      exactNow,
    );
    expect(
      a.vectors.similarities(scope.tenantId, query, MODEL, [{ rid, seq: seqOf(target.id) }], NOW),
    ).toEqual(exactNow);
    // Forgotten through the other process: never returned, whatever either side holds.
    const second = written[654] as NewMemory;
    const secondQuery = await embed(second.content);
    expect(a.vectors.search(scope.tenantId, secondQuery, MODEL, {}, 5, NOW).hits[0]?.rid).toBe(
      a.ridOf(second.id),
    );
    await b.store.forget(scope, { id: second.id }, { now: NOW, hard: false });
    const gone = a.vectors.search(scope.tenantId, secondQuery, MODEL, {}, 5, NOW);
    expect(gone.hits.some((h) => h.rid === a.ridOf(second.id))).toBe(false);
    a.close();
    b.close();
  });

  it("never scores another tenant's row, though its vector is kept in memory", async () => {
    const { a, b, written } = await twoProcesses(1200);
    const target = written[77] as NewMemory;
    const rid = a.ridOf(target.id);
    const query = await embed(target.content);
    expect(a.vectors.search(scope.tenantId, query, MODEL, {}, 5, NOW).hits[0]?.rid).toBe(rid);
    const seq = a.db.prepare('SELECT change_seq FROM memories WHERE rid = ?').pluck().get(rid) as number;
    expect(a.vectors.similarities('other', query, MODEL, [{ rid, seq }], NOW)).toEqual([]);
    expect(a.vectors.search('other', query, MODEL, {}, 5, NOW).hits).toEqual([]);
    a.close();
    b.close();
  });

  it('answers from SQL alone with no room to keep vectors', async () => {
    // One store: two would each build their own graph (a multi-threaded build), whose hits may differ.
    const s = openStore(tempDb(), { annMinVectors: 100, rescoreCacheBytes: 0 });
    const written = await rows(Array.from({ length: 1200 }, (_, i) => text(i)));
    await s.store.insert(scope, written);
    await s.vectors.warm(scope.tenantId, MODEL, 256);
    const sqlSimilarity = s.db.prepare(
      `SELECT 1 - vec_distance_cosine(vec_int8(e.embedding), vec_int8(?)) FROM memory_embeddings e WHERE e.rid = ?`,
    );
    for (const pick of [5, 400, 999]) {
      const target = written[pick] as NewMemory;
      const query = await embed(target.content);
      const found = s.vectors.search(scope.tenantId, query, MODEL, {}, 10, NOW);
      expect(found.hits[0]?.rid).toBe(s.ridOf(target.id));
      for (const hit of found.hits)
        expect(hit.similarity).toBe(sqlSimilarity.pluck().get(vectorBlob(query), hit.rid));
    }
    expect(s.vectors.cachedVectorBytes).toBe(0);
    s.close();
  });
});

describe('sqlite vector search: a zero vector', () => {
  it('is no hit of exact search, of the tail nor of re-scoring (it has no direction)', async () => {
    const s = openStore(tempDb(), { annMinVectors: 100 });
    const zero = newMemoryRow('nothing to embed', {
      id: newId('mem'),
      embedding: new Float32Array(256),
      embedding_model: MODEL,
    });
    await s.store.insert(scope, await rows(Array.from({ length: 150 }, (_, i) => text(i))));
    const before = s.db.prepare('SELECT max(change_seq) FROM memories').pluck().get() as number;
    await s.store.insert(scope, [zero]);
    const rid = s.ridOf(zero.id);
    const query = await embed(text(3));
    const exact = s.vectors.searchExact(scope.tenantId, query, MODEL, {}, 200, NOW);
    expect(exact).toHaveLength(150);
    expect(exact.some((h) => h.rid === rid)).toBe(false);
    // The zero row is the whole tail after the first batch: the tail finds nothing.
    expect(s.vectors.searchExact(scope.tenantId, query, MODEL, {}, 10, NOW, before)).toEqual([]);
    const seq = s.db.prepare('SELECT change_seq FROM memories WHERE rid = ?').pluck().get(rid) as number;
    expect(s.vectors.similarities(scope.tenantId, query, MODEL, [{ rid, seq }], NOW)).toEqual([]);
    s.close();
  });
});
