import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../../../test/services/engines.js';
import { noChangeBus, PgDatabases } from '../../../test/services/pg-store-fixture.js';
import { silentLogger } from '../../core/logger.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import type { PgDatabase } from './pg-database.js';
import { PgMemoryStore } from './pg-memory-store.js';
import { migratePostgres } from './pg-migrations.js';

const skip = !postgresBaseUrl();
const label = (name: string) => `${name}${skip ? ` (skipped: ${postgresSkipReason()})` : ''}`;
const NOW = '2026-06-01T12:00:00.000Z';
const A = { tenantId: 'a' };
const databases = new PgDatabases();
afterEach(() => databases.closeAll());
const noBus = noChangeBus;

function database(url: string, statementTimeoutMs = 30_000): PgDatabase {
  return databases.open(url, { databaseStatementTimeoutMs: statementTimeoutMs });
}

async function counts(db: PgDatabase): Promise<number[]> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT access_count AS n FROM memories ORDER BY rid',
    [],
    db.primary,
  );
  return rows.map((r) => r.n);
}

describe.skipIf(skip)(label('PostgreSQL access counts'), () => {
  it('two replicas flushing the same rows in opposite orders at once count every access', async () => {
    const url = newPostgresDatabase();
    const [one, two] = [database(url), database(url)];
    await migratePostgres(one);
    const stores = [new PgMemoryStore(one, silentLogger, noBus), new PgMemoryStore(two, silentLogger, noBus)];
    const rows = Array.from({ length: 200 }, (_, i) => newMemoryRow(`memory ${i}`));
    await stores[0]?.insert(A, rows);
    const ids = rows.map((r) => r.id);
    await Promise.all(
      stores.map(async (store, s) => {
        for (let round = 0; round < 15; round++) {
          await store.touch(A, s === 0 ? ids : [...ids].reverse(), NOW);
          // Several flushes of one process at once, as timer ticks and reads start them.
          await Promise.all([store.flushTouches(), store.flushTouches(), store.flushTouches()]);
        }
      }),
    );
    expect(await counts(one)).toEqual(ids.map(() => 30));
  });

  it('keeps the counts of a flush that failed and writes them with the next', async () => {
    const url = newPostgresDatabase();
    const db = database(url, 300);
    await migratePostgres(db);
    const store = new PgMemoryStore(db, silentLogger, noBus);
    const row = newMemoryRow('a memory held by another transaction');
    await store.insert(A, [row]);
    await store.touch(A, [row.id, row.id], NOW);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM memories FOR UPDATE');
      await expect(store.flushTouches()).rejects.toThrow();
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    await store.touch(A, [row.id], NOW);
    await store.flushTouches();
    expect(await counts(db)).toEqual([3]);
  });
});
