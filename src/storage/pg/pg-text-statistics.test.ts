import { afterEach, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../../../test/services/engines.js';
import { noChangeBus, PgDatabases } from '../../../test/services/pg-store-fixture.js';
import { silentLogger } from '../../core/logger.js';
import { contentHash } from '../../modules/memory/content-hash.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import type { PgDatabase } from './pg-database.js';
import { pgLiveWhere } from './pg-memory-rows.js';
import { PgMemoryStore } from './pg-memory-store.js';
import { migratePostgres } from './pg-migrations.js';
import { PgTextSearch } from './pg-text-search.js';

const skip = !postgresBaseUrl();
const label = (name: string) => `${name}${skip ? ` (skipped: ${postgresSkipReason()})` : ''}`;
const NOW = '2026-06-01T12:00:00.000Z';
const A = { tenantId: 'a' };
const B = { tenantId: 'b' };
const databases = new PgDatabases();
afterEach(() => databases.closeAll());
const noBus = noChangeBus;

async function migrated(): Promise<PgDatabase> {
  const db = databases.open(newPostgresDatabase(), { databasePoolSize: 8 });
  await migratePostgres(db);
  return db;
}

type Stats = Map<string, { docs: number; own: number; context: number }>;

/** What memory_terms says, summed: per tenant and term. */
async function kept(db: PgDatabase): Promise<Stats> {
  const { rows } = await db.query<{ k: string; docs: number; own: number; context: number }>(
    `SELECT tenant_id || '/' || term AS k, sum(docs)::float8 AS docs, sum(own_chars)::float8 AS own,
       sum(context_chars)::float8 AS context
     FROM memory_terms GROUP BY tenant_id, term HAVING sum(docs) <> 0 OR sum(own_chars) <> 0`,
    [],
    db.primary,
  );
  return new Map(rows.map((r) => [r.k, { docs: r.docs, own: r.own, context: r.context }]));
}

/** The same statistics counted from the live rows themselves. */
async function counted(db: PgDatabase): Promise<Stats> {
  const { rows } = await db.query<{ k: string; docs: number; own: number; context: number }>(
    `SELECT tenant_id || '/' AS k, count(*)::float8 AS docs, sum(length(search_text))::float8 AS own,
       sum(length(context_text))::float8 AS context
     FROM memories WHERE deleted_at IS NULL GROUP BY tenant_id
     UNION ALL
     SELECT m.tenant_id || '/' || u.lexeme, count(*)::float8, 0, 0
     FROM memories m, unnest(m.search_tsv) u WHERE m.deleted_at IS NULL GROUP BY m.tenant_id, u.lexeme`,
    [],
    db.primary,
  );
  return new Map(rows.map((r) => [r.k, { docs: r.docs, own: r.own, context: r.context }]));
}

function sorted(stats: Stats): [string, { docs: number; own: number; context: number }][] {
  return [...stats].sort(([a], [b]) => a.localeCompare(b));
}

describe.skipIf(skip)(label('PostgreSQL text statistics kept by the store'), () => {
  it('stay equal to counts of the live rows through inserts, sessions, updates, keys and forgets', async () => {
    const db = await migrated();
    const store = new PgMemoryStore(db, silentLogger, noBus);
    await store.insert(A, [
      newMemoryRow('the garden shed has a blue door'),
      newMemoryRow('tomatoes grow by the garden fence'),
    ]);
    await store.insert(B, [newMemoryRow('a garden in another tenant')]);
    // A session: each memory's context is its neighbours' text, rewritten as the session grows.
    for (const content of ['we talked about the lake', 'the lake was cold', 'swimming in the lake'])
      await store.insert(A, [newMemoryRow(content, { session: 's1' })]);
    const keyed = newMemoryRow('favourite colour is green', { key: 'colour' });
    await store.insert(A, [keyed]);
    const replaced = 'favourite colour is purple now';
    await store.insert(A, [newMemoryRow(replaced, { key: 'colour', content_hash: contentHash(replaced) })]);
    const [door] = (await store.list(A, { limit: 100, offset: 0, sort: 'created_at', order: 'asc' }, NOW))
      .items;
    await store.update(A, { id: door?.id as string }, { content: 'the garden shed has a red door' }, NOW);
    await store.forget(A, { key: 'colour', project: null }, { hard: false, now: NOW });
    await store.forget(B, { all: true }, { hard: true, now: NOW });
    await store.touch(A, [door?.id as string], NOW);
    await store.flushTouches();

    const want = await counted(db);
    expect(want.get('a/')?.docs).toBe(5);
    expect(want.has('b/')).toBe(false);
    expect(sorted(await kept(db))).toEqual(sorted(want));
  });

  it('stay exact under concurrent writers while recalls fold the rows they read', async () => {
    const db = await migrated();
    const store = new PgMemoryStore(db, silentLogger, noBus);
    // One row before the race, so that every recall, even one that runs before any writer commits, finds it.
    await store.insert(A, [newMemoryRow('the common garden before the writers')]);
    const writers = Array.from({ length: 6 }, async (_, w) => {
      for (let i = 0; i < 40; i++)
        await store.insert(A, [newMemoryRow(`writer ${w} note ${i} about the common garden`)]);
    });
    const readers = Array.from({ length: 3 }, async () => {
      for (let i = 0; i < 40; i++) {
        store.invalidate(A.tenantId);
        const found = await store.candidates(A, {
          text: 'common garden',
          embedding: null,
          embedding_model: null,
          filter: {},
          limit: 10,
          now: NOW,
        });
        expect(found.text.length).toBeGreaterThan(0);
      }
    });
    await Promise.all([...writers, ...readers]);
    const { rows } = await db.query<{ parts: string }>(
      "SELECT count(*) AS parts FROM memory_terms WHERE tenant_id = 'a' AND term = 'garden'",
      [],
      db.primary,
    );
    // 241 statements each added a row for 'garden'; folds after reads took most of them back into one.
    expect(Number(rows[0]?.parts)).toBeLessThan(241);
    expect(sorted(await kept(db))).toEqual(sorted(await counted(db)));
  });
});

describe.skipIf(skip)(label('PostgreSQL short list of a common, sparse term'), () => {
  /** A's memories: 30 of 100 name the garden, in order; returns the garden ones' contents, newest first. */
  async function seedA(store: PgMemoryStore): Promise<string[]> {
    const garden: string[] = [];
    const rows = Array.from({ length: 100 }, (_, i) => {
      if (i % 10 >= 3) return newMemoryRow(`other thing number ${i}`);
      const content = `garden note ${i}`;
      garden.push(content);
      return newMemoryRow(content);
    });
    for (const row of rows) await store.insert(A, [row]);
    return garden.reverse();
  }

  // Match budget 10 and short list 10: the 30 garden matches are over the budget (so the newest are
  // taken) and sparse (30² < 100 documents × 40), and twice the short list is two thirds of them: the
  // window is the newest third of the row ids.
  async function search(db: PgDatabase, statements: string[]): Promise<string[]> {
    db.observe({ observe: (sql) => void statements.push(sql) });
    const text = new PgTextSearch(db, { matchBudget: 10, shortList: 10 });
    const hits = await text.search(A.tenantId, 'garden', pgLiveWhere(A.tenantId, NOW), 2, null);
    return hits.map((h) => h.row.content);
  }

  it('reads the newest rows only, and finds the same newest matches', async () => {
    const db = await migrated();
    const garden = await seedA(new PgMemoryStore(db, silentLogger, noBus));
    const statements: string[] = [];
    expect(await search(db, statements)).toEqual(garden.slice(0, 2));
    const shortLists = statements.filter((sql) => sql.includes('search_tsv @@'));
    expect(shortLists).toHaveLength(1);
    expect(shortLists[0]).toContain('m.rid >');
  });

  it("reads again whole when the window of newest ids held too few of the tenant's matches", async () => {
    const db = await migrated();
    const store = new PgMemoryStore(db, silentLogger, noBus);
    const garden = await seedA(store);
    // Another tenant's rows since: A's rows all sit below the window of newest ids.
    await store.insert(
      B,
      Array.from({ length: 400 }, (_, i) => newMemoryRow(`filler ${i}`)),
    );
    const statements: string[] = [];
    expect(await search(db, statements)).toEqual(garden.slice(0, 2));
    const shortLists = statements.filter((sql) => sql.includes('search_tsv @@'));
    expect(shortLists).toHaveLength(2);
    expect(shortLists[1]).not.toContain('m.rid >');
  });
});

describe.skipIf(skip)(label('PostgreSQL text statistics on a replica'), () => {
  it("finds a term another replica's write added first, before any notice of that write", async () => {
    const db = await migrated();
    const writer = new PgMemoryStore(db, silentLogger, noBus);
    await writer.insert(A, [newMemoryRow('the garden shed has a blue door')]);
    // Replica two's text search, which hears of no write: it learns the terms the query has are in no
    // document, and the tenant's size.
    const text = new PgTextSearch(db);
    const where = pgLiveWhere(A.tenantId, NOW);
    expect(await text.search(A.tenantId, 'zebra garden', where, 5, null)).toHaveLength(1);
    expect(await text.search(A.tenantId, 'zebra', where, 5, null)).toEqual([]);
    await writer.insert(A, [newMemoryRow('a zebra lives at the zoo')]);
    const hits = await text.search(A.tenantId, 'zebra', where, 5, null);
    expect(hits.map((h) => h.row.content)).toEqual(['a zebra lives at the zoo']);
  });
});
