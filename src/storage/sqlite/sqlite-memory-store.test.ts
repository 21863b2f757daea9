import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newId } from '../../core/ids.js';
import { silentLogger } from '../../core/logger.js';
import { createHashEmbedder } from '../../modules/embeddings/hash-embedder.js';
import { contentHash } from '../../modules/memory/content-hash.js';
import type { NewMemory } from '../../modules/memory/memory-store.js';
import { newMemoryRow, runMemoryStoreContract } from '../contract/memory-store-contract.js';
import { openSqliteDatabase } from './sqlite-database.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite, migrationStatus } from './sqlite-migrations.js';
import type { TextSearchOptions } from './sqlite-text-search.js';
import type { VectorSearchOptions } from './sqlite-vector-search.js';

const dirs: string[] = [];
function tempDb(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-sqlite-'));
  dirs.push(dir);
  return path.join(dir, 'brain.db');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function openStore(
  file: string,
  vectorOptions: Partial<VectorSearchOptions> = {},
  textOptions: Partial<TextSearchOptions> = {},
) {
  const db = openSqliteDatabase(file, { busyTimeoutMs: 5000, cacheSizeMb: 16 });
  migrateSqlite(db);
  const store = new SqliteMemoryStore(db, silentLogger, { vectors: vectorOptions, text: textOptions });
  return {
    db,
    store,
    close: async () => {
      store.vectors.close();
      db.close();
    },
  };
}

runMemoryStoreContract('sqlite (exact vectors)', async () => openStore(tempDb()));
// The same contract with the ANN index forced on from the first row, so both vector paths pass it.
runMemoryStoreContract('sqlite (ANN vectors)', async () => {
  const h = openStore(tempDb(), { annMinVectors: 0 });
  return h;
});

const embedder = createHashEmbedder(256);
const NOW = '2026-06-01T12:00:00.000Z';
const scope = { tenantId: 't' };

async function rows(texts: string[], extra: Partial<NewMemory> = {}): Promise<NewMemory[]> {
  const vectors = await embedder.embed(texts);
  return texts.map((content, i) =>
    newMemoryRow(content, {
      id: newId('mem'),
      embedding: vectors[i] ?? null,
      embedding_model: embedder.model,
      ...extra,
    }),
  );
}

const vocabulary =
  'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa'.split(
    ' ',
  );
function sentence(i: number): string {
  const pick = (n: number) => vocabulary[(i * 7 + n * 13 + Math.floor(i / (n + 3))) % vocabulary.length];
  return `note ${i}: ${pick(1)} ${pick(2)} ${pick(3)} ${pick(4)} item${i % 97}`;
}

describe('sqlite driver', () => {
  it('writes access counts in batches that another connection sees within the flush window', async () => {
    const file = tempDb();
    const a = openStore(file);
    const b = openStore(file);
    try {
      const [m] = await rows(['counted across connections']);
      await a.store.insert(scope, [m as NewMemory]);
      const id = (m as NewMemory).id;
      const countIn = (db: typeof b.db) =>
        (db.prepare('SELECT access_count AS n FROM memories WHERE id = ?').get(id) as { n: number }).n;
      await a.store.touch(scope, [id], '2026-06-01T13:00:00.000Z');
      await a.store.touch(scope, [id], '2026-06-01T13:00:01.000Z');
      // Batched: not written by the recall itself, but the writing connection's reads include it.
      expect(countIn(b.db)).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(countIn(b.db)).toBe(2);
      await a.store.touch(scope, [id], '2026-06-01T13:00:02.000Z');
      expect(await a.store.get(scope, id, NOW)).toMatchObject({
        access_count: 3,
        accessed_at: '2026-06-01T13:00:02.000Z',
      });
      expect(countIn(b.db)).toBe(3);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migrates once, records the version, and is idempotent', () => {
    const file = tempDb();
    const db = openSqliteDatabase(file, { busyTimeoutMs: 1000, cacheSizeMb: 8 });
    expect(migrationStatus(db).current).toBe(0);
    const first = migrateSqlite(db);
    expect(first.applied).toEqual([
      '1_memories',
      '2_fts_insert_in_store',
      '3_brain_meta',
      '4_search_text',
      '5_embedding_queue',
      '6_idempotency_keys',
      '7_config',
      '8_security',
      '9_jobs',
      '10_tiers',
      '11_episodes',
      '12_versions',
      '13_executions',
      '14_tier_last_move',
      '15_fts_tenant',
      '16_superseded_step_aside',
      '17_reworded_hash',
    ]);
    // The store keeps the full-text index itself (migration 4): no trigger writes it.
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()).toEqual([]);
    expect(migrateSqlite(db).applied).toEqual([]);
    expect(migrationStatus(db)).toEqual({ current: first.current, latest: first.current });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(2);
    db.close();
  });

  it('refuses a corrupt file (STORAGE_CORRUPT) and an unwritable path (STORAGE_ERROR) with a clear message', () => {
    const corrupt = tempDb();
    fs.writeFileSync(corrupt, Buffer.alloc(8192, 0x5a));
    expect(() => openSqliteDatabase(corrupt, { busyTimeoutMs: 100, cacheSizeMb: 8 })).toThrow(
      /corrupt or not a SQLite database/,
    );
    const blocker = tempDb();
    fs.writeFileSync(blocker, 'a regular file');
    expect(() =>
      openSqliteDatabase(path.join(blocker, 'sub', 'brain.db'), { busyTimeoutMs: 100, cacheSizeMb: 8 }),
    ).toThrow(/cannot open database file .* writable/);
  });

  it('answers from the ANN index once built, matching exact search, and sees writes from another connection', async () => {
    const file = tempDb();
    const a = openStore(file, { annMinVectors: 100, inlineCatchUp: 50 });
    const b = openStore(file, { annMinVectors: 1_000_000 });
    const texts = Array.from({ length: 600 }, (_, i) => sentence(i));
    await a.store.insert(scope, await rows(texts));
    await a.store.vectors.warm(scope.tenantId, embedder.model, 256);
    expect(a.store.vectors.isReady(scope.tenantId, embedder.model)).toBe(true);
    const [q] = await embedder.embed(['golf hotel india item5']);
    const approx = a.store.vectors.search(scope.tenantId, q!, embedder.model, {}, 10, NOW);
    const exact = b.store.vectors.search(scope.tenantId, q!, embedder.model, {}, 10, NOW);
    expect(approx.mode).toBe('approximate');
    expect(exact.mode).toBe('exact');
    // Tie-aware: the hash embedder gives many equal similarities, and any of a tied group is a right answer.
    const floor = (exact.hits.at(-1)?.similarity ?? 0) - 1e-6;
    const asGoodAsExact = approx.hits.filter((h) => h.similarity >= floor).length;
    expect(approx.hits).toHaveLength(10);
    expect(asGoodAsExact).toBeGreaterThanOrEqual(9);
    // A write through the other connection (another process in production) is found through the index.
    const [fresh] = await rows(['zulu yankee whiskey unique marker']);
    await b.store.insert(scope, [fresh!]);
    const [fq] = await embedder.embed(['zulu yankee whiskey unique marker']);
    const afterWrite = a.store.vectors.search(scope.tenantId, fq!, embedder.model, {}, 5, NOW);
    expect(afterWrite.mode).toBe('approximate');
    const freshRid = (b.db.prepare('SELECT rid FROM memories WHERE id = ?').get(fresh!.id) as { rid: number })
      .rid;
    expect(afterWrite.hits[0]?.rid).toBe(freshRid);
    // A bulk write larger than the inline catch-up is still found (the unindexed tail is searched exactly).
    const bulk = await rows(Array.from({ length: 120 }, (_, i) => `bulk import row ${i} quasar nebula`));
    await b.store.insert(scope, bulk);
    const [bq] = await embedder.embed(['bulk import row 119 quasar nebula']);
    const afterBulk = a.store.vectors.search(scope.tenantId, bq!, embedder.model, {}, 3, NOW);
    const bulkRid = (
      b.db.prepare('SELECT rid FROM memories WHERE id = ?').get(bulk[119]!.id) as { rid: number }
    ).rid;
    expect(afterBulk.hits[0]?.rid).toBe(bulkRid);
    // Nothing is inserted on the event loop: the tail is searched exactly until the worker catches up.
    expect(a.store.vectors.describe(scope.tenantId, embedder.model)?.vectors).toBe(600);
    // Deleted through the other connection: never returned, even though the index still held it.
    await b.store.forget(scope, { id: fresh!.id }, { hard: false, now: NOW });
    const afterDelete = a.store.vectors.search(scope.tenantId, fq!, embedder.model, {}, 5, NOW);
    expect(afterDelete.hits.some((h) => h.rid === freshRid)).toBe(false);
    await a.close();
    await b.close();
  });

  it('saves the ANN index, loads it on the next open, replays later changes, and refuses a foreign one', async () => {
    const file = tempDb();
    const indexDir = `${file}.vectors`;
    const options = { annMinVectors: 100, saveAfterChanges: 100, indexDir };
    const a = openStore(file, options);
    const texts = Array.from({ length: 600 }, (_, i) => sentence(i));
    const written = await rows(texts);
    await a.store.insert(scope, written);
    await a.store.vectors.warm(scope.tenantId, embedder.model, 256);
    const built = a.store.vectors.describe(scope.tenantId, embedder.model);
    expect(built).toMatchObject({ vectors: 600, ready: true, loaded: false });
    expect(built?.savedSeq).toBe(built?.seq);
    expect(fs.readdirSync(indexDir).sort()).toEqual([
      expect.stringMatching(/\.json$/),
      expect.stringMatching(/\.usearch$/),
    ]);
    // Changes after the save, then a crash: the vector index is not closed, so it is not saved again.
    await a.store.forget(scope, { id: written[5]!.id }, { hard: false, now: NOW });
    const [fresh] = await rows(['zulu yankee whiskey unique marker']);
    await a.store.insert(scope, [fresh!]);
    const [moved] = await embedder.embed(['quasar nebula pulsar moved row']);
    await a.store.update(
      scope,
      { id: written[7]!.id },
      {
        content: 'quasar nebula pulsar moved row',
        content_hash: contentHash('quasar nebula pulsar moved row'),
        embedding: moved!,
        embedding_model: embedder.model,
      },
      NOW,
    );
    a.db.close();

    const b = openStore(file, options);
    await b.store.vectors.warm(scope.tenantId, embedder.model, 256);
    const loaded = b.store.vectors.describe(scope.tenantId, embedder.model);
    expect(loaded).toMatchObject({ loaded: true, ready: true, vectors: 600, savedSeq: built?.seq });
    expect(loaded!.seq).toBeGreaterThan(built!.seq);
    const ridOf = (id: string) =>
      (b.db.prepare('SELECT rid FROM memories WHERE id = ?').get(id) as { rid: number }).rid;
    const top = async (text: string) => {
      const [q] = await embedder.embed([text]);
      const found = b.store.vectors.search(scope.tenantId, q!, embedder.model, {}, 5, NOW);
      expect(found.mode).toBe('approximate');
      return found.hits.map((h) => h.rid);
    };
    expect((await top('zulu yankee whiskey unique marker'))[0]).toBe(ridOf(fresh!.id));
    expect((await top('quasar nebula pulsar moved row'))[0]).toBe(ridOf(written[7]!.id));
    expect(await top(texts[5]!)).not.toContain(ridOf(written[5]!.id));
    // The old vector of the updated row is gone from the index: its old text no longer finds it first.
    expect((await top(texts[7]!))[0]).not.toBe(ridOf(written[7]!.id));
    await b.close();

    // Another database put at the same path (its own instance id) never uses that index.
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${file}${suffix}`, { force: true });
    const c = openStore(file, options);
    await c.store.insert(scope, await rows(texts.slice(0, 150)));
    await c.store.vectors.warm(scope.tenantId, embedder.model, 256);
    expect(c.store.vectors.describe(scope.tenantId, embedder.model)).toMatchObject({
      loaded: false,
      vectors: 150,
    });
    await c.close();
    // A damaged index file is rebuilt from the rows, not trusted.
    const usearchFile = fs.readdirSync(indexDir).find((f) => f.endsWith('.usearch'))!;
    fs.writeFileSync(path.join(indexDir, usearchFile), 'not an index');
    const d = openStore(file, options);
    await d.store.vectors.warm(scope.tenantId, embedder.model, 256);
    expect(d.store.vectors.describe(scope.tenantId, embedder.model)).toMatchObject({
      loaded: false,
      vectors: 150,
      ready: true,
    });
    const [q] = await embedder.embed([texts[3]!]);
    expect(
      d.store.vectors.search(scope.tenantId, q!, embedder.model, {}, 1, NOW).hits[0]?.similarity,
    ).toBeCloseTo(1, 2);
    await d.close();
  });

  it('serves a project filter from the ANN index only when the project is a large share', async () => {
    const file = tempDb();
    const s = openStore(file, { annMinVectors: 10 });
    await s.store.insert(
      scope,
      await rows(
        Array.from({ length: 200 }, (_, i) => sentence(i)),
        { project: 'big' },
      ),
    );
    await s.store.insert(scope, await rows(['tiny project only row kilo'], { project: 'small' }));
    await s.store.vectors.warm(scope.tenantId, embedder.model, 256);
    const [q] = await embedder.embed(['kilo']);
    expect(s.store.vectors.search(scope.tenantId, q!, embedder.model, { project: 'big' }, 5, NOW).mode).toBe(
      'approximate',
    );
    const small = s.store.vectors.search(scope.tenantId, q!, embedder.model, { project: 'small' }, 5, NOW);
    expect(small.mode).toBe('exact');
    expect(small.hits).toHaveLength(1);
    await s.close();
  });

  it('ranks matches of only common terms newest first: all the rarest terms, then the rarest one', async () => {
    // A budget of 2 matches makes every word below common, as most words are in a large tenant.
    const s = openStore(tempDb(), {}, { matchBudget: 2 });
    const texts = [
      'harbour lantern old',
      'harbour lantern older',
      'harbour lantern oldest',
      'harbour only first',
      'harbour only second',
      'harbour only third',
      'harbour only fourth',
      'lantern only first',
      'lantern only second',
      'lantern only third',
      'lantern only fourth',
    ];
    const written = await rows(texts);
    await s.store.insert(scope, written);
    const found = await s.store.candidates(scope, {
      text: 'harbour lantern',
      embedding: null,
      embedding_model: null,
      filter: {},
      limit: 5,
      now: NOW,
    });
    const idOf = (i: number) => written[i]?.id;
    // Both words (either is the rarer: 7 vs 7 documents) newest first, then the rarest word's newest.
    expect(found.text.slice(0, 3).map((t) => t.id)).toEqual([idOf(2), idOf(1), idOf(0)]);
    expect(found.text).toHaveLength(5);
    const [both, single] = [found.text[0]?.score ?? 0, found.text[4]?.score ?? 0];
    expect(single).toBeGreaterThan(0);
    expect(both).toBeGreaterThan(single);
    await s.close();
  });
});
