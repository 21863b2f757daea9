import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../../../test/services/engines.js';
import { noChangeBus, PgDatabases } from '../../../test/services/pg-store-fixture.js';
import { silentLogger } from '../../core/logger.js';
import { createHashEmbedder } from '../../modules/embeddings/hash-embedder.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import type { PgDatabase } from './pg-database.js';
import { pgLiveWhere } from './pg-memory-rows.js';
import { PgMemoryStore } from './pg-memory-store.js';
import { migratePostgres, PG_MIGRATIONS } from './pg-migrations.js';
import { PgVectorIndexer, writeVectors } from './pg-vector-index.js';
import { PgVectorSearch } from './pg-vector-search.js';

const skip = !postgresBaseUrl();
const label = (name: string) => `${name}${skip ? ` (skipped: ${postgresSkipReason()})` : ''}`;
const NOW = '2026-06-01T12:00:00.000Z';
const A = { tenantId: 'a' };
const embedder = createHashEmbedder();
const databases = new PgDatabases();
afterEach(() => databases.closeAll());
const noBus = noChangeBus;

function database(url = newPostgresDatabase()): PgDatabase {
  return databases.open(url);
}

/** `n` memories with vectors written straight to the table (fresh), and their rids. */
async function seed(db: PgDatabase, store: PgMemoryStore, n: number): Promise<Map<string, string>> {
  const rows = Array.from({ length: n }, (_, i) => newMemoryRow(`note ${i} about the ${i % 9} garden shed`));
  await store.insert(A, rows);
  // The store's own indexer would start moving the vectors written below once writes pause (200 ms,
  // less than a loaded machine takes to reach the counts these tests make): these tests run their own.
  await store.vectors.indexer.close();
  const { rows: rids } = await db.query<{ rid: string; content: string }>(
    'SELECT rid, content FROM memories',
    [],
    db.primary,
  );
  const vectors = await embedder.embed(rids.map((r) => r.content));
  await db.transaction((client) =>
    writeVectors(
      db,
      client,
      rids.map((r, i) => ({
        rid: r.rid,
        tenantId: A.tenantId,
        model: embedder.model,
        vector: vectors[i] as Float32Array,
      })),
    ),
  );
  return new Map(rids.map((r) => [r.content, r.rid]));
}

/**
 * 1,000 more memories with fresh vectors (batch `b`), written in SQL: the store's own indexer would
 * move some of them, and this test counts what one indexer moves.
 */
async function seedBatch(db: PgDatabase, b: number): Promise<void> {
  const { rows: rids } = await db.query<{ rid: string }>(
    `INSERT INTO memories (id, tenant_id, content, content_hash, created_at, updated_at)
     SELECT 'mem_b' || $1 || '_' || i, $2, 'batch note ' || i, md5($1 || '/' || i), $3, $3
     FROM generate_series(1, 1000) AS i RETURNING rid`,
    [String(b), A.tenantId, NOW],
    db.primary,
  );
  const vector = Float32Array.from({ length: embedder.dimensions }, (_, i) => Math.sin(i + b));
  await db.transaction((client) =>
    writeVectors(
      db,
      client,
      rids.map((r) => ({ rid: r.rid, tenantId: A.tenantId, model: embedder.model, vector })),
    ),
  );
}

async function freshCount(db: PgDatabase): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM memory_embeddings WHERE fresh',
    [],
    db.primary,
  );
  return Number(rows[0]?.n);
}

describe.skipIf(skip)(label('PostgreSQL vectors: written fresh, indexed in the background'), () => {
  it('finds fresh vectors exactly, and the same nearest once they are in the HNSW index', async () => {
    const db = database();
    await migratePostgres(db);
    const store = new PgMemoryStore(db, silentLogger, noBus);
    const rids = await seed(db, store, 450);
    expect(await freshCount(db)).toBe(450);
    const search = new PgVectorSearch(db, silentLogger);
    await search.ensureIndex(embedder.model, embedder.dimensions);
    const [query] = await embedder.embed(['note 17 about the 8 garden shed']);
    const nearest = async () =>
      (
        await search.search(
          A.tenantId,
          query as Float32Array,
          embedder.model,
          pgLiveWhere(A.tenantId, NOW, {}),
          5,
        )
      ).hits.map((h) => h.rid);
    const before = await nearest();
    expect(before[0]).toBe(rids.get('note 17 about the 8 garden shed'));

    const indexer = new PgVectorIndexer(db, silentLogger);
    expect(await indexer.indexBatch()).toBe(200);
    expect(await freshCount(db)).toBe(250);
    await indexer.flush();
    expect(await freshCount(db)).toBe(0);
    expect(await nearest()).toEqual(before);

    // The ANN statement's graph half uses the index (the planner may prefer it only with enough rows,
    // so ask it not to scan sequentially).
    const client = await db.primary.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT rid FROM memory_embeddings e WHERE e.model = $1 AND e.dims = ${embedder.dimensions}
           AND NOT e.fresh ORDER BY e.embedding::vector(${embedder.dimensions}) <=> $2::vector(${embedder.dimensions}) LIMIT 5`,
        [embedder.model, `[${Array.from(query as Float32Array).join(',')}]`],
      );
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/memory_embeddings_hnsw_/);
    } finally {
      client.release();
    }
  });

  it('makes a replaced vector fresh again, so the write never waits on the graph', async () => {
    const db = database();
    await migratePostgres(db);
    const store = new PgMemoryStore(db, silentLogger, noBus);
    const rids = await seed(db, store, 3);
    await new PgVectorIndexer(db, silentLogger).flush();
    const rid = rids.get('note 1 about the 1 garden shed') as string;
    const [vector] = await embedder.embed(['an entirely different sentence']);
    await db.transaction((client) =>
      writeVectors(db, client, [
        { rid, tenantId: A.tenantId, model: embedder.model, vector: vector as Float32Array },
      ]),
    );
    const { rows } = await db.query<{ rid: string; fresh: boolean; embedding: string }>(
      'SELECT rid, fresh, embedding::text AS embedding FROM memory_embeddings ORDER BY rid',
      [],
      db.primary,
    );
    expect(rows.filter((r) => r.fresh).map((r) => r.rid)).toEqual([rid]);
    // Sent in binary, stored exactly: every float comes back as written.
    const stored = Float32Array.from(
      (rows.find((r) => r.rid === rid)?.embedding ?? '').slice(1, -1).split(',').map(Number),
    );
    expect(stored).toEqual(vector);
  });

  it('shares the backlog between two replicas without moving a row twice or failing', async () => {
    const db = database();
    await migratePostgres(db);
    await seed(db, new PgMemoryStore(db, silentLogger, noBus), 900);
    const [one, two] = [new PgVectorIndexer(db, silentLogger), new PgVectorIndexer(db, silentLogger)];
    const moved = await Promise.all(
      Array.from({ length: 6 }, (_, i) => ((i % 2 ? one : two) as PgVectorIndexer).indexBatch()),
    );
    expect(moved.reduce((a, b) => a + b, 0)).toBe(900);
    expect(await freshCount(db)).toBe(0);
  });

  it('vacuums the table itself after moving a large backlog, leaving no dead versions to autovacuum', async () => {
    const db = database();
    await migratePostgres(db);
    for (let i = 0; i < 11; i++) await seedBatch(db, i);
    const lastVacuum = async () =>
      (
        await db.query<{ at: string | null }>(
          "SELECT last_vacuum AS at FROM pg_stat_user_tables WHERE relname = 'memory_embeddings'",
          [],
          db.primary,
        )
      ).rows[0]?.at ?? null;
    expect(await lastVacuum()).toBeNull();
    await new PgVectorIndexer(db, silentLogger).flush();
    expect(await freshCount(db)).toBe(0);
    expect(await lastVacuum()).not.toBeNull();
  });

  it('drops and builds again an HNSW index a failed build left invalid', async () => {
    const db = database();
    await migratePostgres(db);
    await seed(db, new PgMemoryStore(db, silentLogger, noBus), 20);
    await new PgVectorSearch(db, silentLogger).ensureIndex(embedder.model, embedder.dimensions);
    const validity = async () =>
      (
        await db.query<{ valid: boolean }>(
          `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE c.relname LIKE 'memory_embeddings_hnsw_%'`,
          [],
          db.primary,
        )
      ).rows.map((r) => r.valid);
    expect(await validity()).toEqual([true]);
    // What a cancelled CREATE INDEX CONCURRENTLY leaves: the index, marked invalid (the test cluster's
    // user is its superuser, so it can say so in the catalog).
    await db.query(
      `UPDATE pg_index SET indisvalid = false WHERE indexrelid IN (
         SELECT oid FROM pg_class WHERE relname LIKE 'memory_embeddings_hnsw_%')`,
      [],
      db.primary,
    );
    expect(await validity()).toEqual([false]);
    const again = new PgVectorSearch(db, silentLogger);
    await again.ensureIndex(embedder.model, embedder.dimensions);
    expect(await validity()).toEqual([true]);
    expect(again.hasIndex(embedder.model, embedder.dimensions)).toBe(true);
  });

  it('migrates a version 1 store: its vectors count as indexed and the old indexes make way', async () => {
    const url = newPostgresDatabase();
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    try {
      const v1 = PG_MIGRATIONS.find((m) => m.version === 1);
      await raw.query(v1?.sql ?? '');
      await raw.query(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO schema_migrations VALUES (1, 'memories', now())`);
      await raw.query(
        `INSERT INTO memories (id, tenant_id, content, content_hash, created_at, updated_at)
           VALUES ('mem_1', 'a', 'old', 'h', '${NOW}', '${NOW}')`,
      );
      await raw.query(
        `INSERT INTO memory_embeddings (rid, tenant_id, model, dims, embedding)
           SELECT rid, 'a', 'm', 3, '[1,0,0]' FROM memories`,
      );
      await raw.query(`CREATE INDEX memory_embeddings_hnsw_0123456789abcdef ON memory_embeddings
        USING hnsw ((embedding::vector(3)) vector_cosine_ops) WHERE model = 'm' AND dims = 3`);
    } finally {
      await raw.end();
    }
    const db = database(url);
    expect((await migratePostgres(db)).applied).toEqual([
      '2_fresh_vectors',
      '3_idempotency_keys',
      '4_config',
      '5_security',
      '6_text_statistics',
      '7_jobs',
      '8_tiers',
      '9_episodes',
      '10_versions',
      '11_executions',
      '12_memory_tiers',
      '13_tier_moves_by_memory',
      '14_tier_last_move',
      '15_tier_reasons',
      '16_memory_change_versions',
      '17_superseded_step_aside',
      '18_reworded_hash',
    ]);
    expect(await freshCount(db)).toBe(0);
    const { rows } = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_indexes WHERE indexname LIKE 'memory_embeddings_hnsw_%'",
    );
    expect(Number(rows[0]?.n)).toBe(0);
  });
});
