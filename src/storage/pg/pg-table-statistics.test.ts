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
const A = { tenantId: 'a' };
const databases = new PgDatabases();
afterEach(() => databases.closeAll());

async function counted(db: PgDatabase): Promise<{ tuples: number; analyzed: boolean }> {
  const { rows } = await db.query<{ tuples: number; analyzed: boolean }>(
    `SELECT c.reltuples::float8 AS tuples, s.last_analyze IS NOT NULL AS analyzed
     FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = 'memories'`,
    [],
    db.primary,
  );
  return { tuples: Number(rows[0]?.tuples), analyzed: Boolean(rows[0]?.analyzed) };
}

describe.skipIf(skip)(label('the planner statistics of memories on PostgreSQL'), () => {
  it('are renewed as the table grows, so that a young store plans its lookups by index', async () => {
    const db = databases.open(newPostgresDatabase());
    await migratePostgres(db);
    const store = new PgMemoryStore(db, silentLogger, noChangeBus);
    const write = (n: number, from: number) =>
      store.insert(
        A,
        Array.from({ length: n }, (_, i) => newMemoryRow(`statistics fact ${from + i} of the ${i % 7} set`)),
      );
    await write(400, 0);
    await store.statistics.close(); // waits for an analysis in flight
    expect((await counted(db)).analyzed).toBe(false); // under 500 rows: none yet
    const again = new PgMemoryStore(db, silentLogger, noChangeBus);
    await again.insert(
      A,
      Array.from({ length: 600 }, (_, i) => newMemoryRow(`grown fact ${i} of the set`)),
    );
    await again.statistics.close();
    expect(await counted(db)).toEqual({ tuples: 1000, analyzed: true });
    // The lookup by id, planned with those statistics, uses the id's unique index.
    const { rows } = await db.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN SELECT rid FROM memories WHERE tenant_id = 'a' AND id = 'mem_x' AND key IS NULL
         AND deleted_at IS NULL AND superseded_by IS NULL`,
      [],
      db.primary,
    );
    expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('memories_id_key');
    await again.vectors.indexer.close();
    await store.vectors.indexer.close();
  });
});
