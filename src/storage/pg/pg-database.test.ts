import { afterEach, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../../../test/services/engines.js';
import { silentLogger } from '../../core/logger.js';
import { PgDatabase } from './pg-database.js';

const skip = !postgresBaseUrl();
const label = (name: string) => `${name}${skip ? ` (skipped: ${postgresSkipReason()})` : ''}`;
const open: PgDatabase[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

/** A database on one connection, so that the session a statement was prepared in is the one asked. */
function database(prepared?: boolean): PgDatabase {
  const db = new PgDatabase(
    {
      dbPath: '',
      busyTimeoutMs: 5000,
      sqliteCacheMb: 16,
      databaseUrl: newPostgresDatabase(),
      databasePoolSize: 1,
      databaseStatementTimeoutMs: 30_000,
      databaseConnectTimeoutMs: 5000,
      databaseSsl: 'disable',
      ...(prepared === undefined ? {} : { databasePreparedStatements: prepared }),
    },
    silentLogger,
  );
  open.push(db);
  return db;
}

async function preparedNames(db: PgDatabase): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    'SELECT name FROM pg_prepared_statements',
    [],
    db.primary,
  );
  return rows.map((r) => r.name);
}

describe.skipIf(skip)(label('named prepared statements on PostgreSQL'), () => {
  it('are prepared once per connection by default and answer each call', async () => {
    const db = database();
    for (const n of [1, 2, 3]) {
      const { rows } = await db.prepared<{ n: number }>(
        'brain_test_echo',
        'SELECT $1::int AS n',
        [n],
        db.primary,
      );
      expect(rows).toEqual([{ n }]);
    }
    expect(await preparedNames(db)).toEqual(['brain_test_echo']);
  });

  it('are plain queries with BRAIN_DATABASE_PREPARED_STATEMENTS off', async () => {
    const db = database(false);
    const { rows } = await db.prepared<{ n: number }>(
      'brain_test_echo',
      'SELECT $1::int AS n',
      [7],
      db.primary,
    );
    expect(rows).toEqual([{ n: 7 }]);
    expect(await preparedNames(db)).toEqual([]);
  });
});
