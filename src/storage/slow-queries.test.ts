/**
 * The slow-query log on every engine: a deliberately slow statement run through the driver's timed path
 * (SQLite's prepared statements, PostgreSQL's queries and transactions) lands in `query_log` with its SQL
 * and time; a fast one does not; bound values never do. The log is wired as the storage factories wire it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES, newPostgresDatabase } from '../../test/services/engines.js';
import { engineSkipReason } from '../../test/services/storage-harness.js';
import type { Logger } from '../core/logger.js';
import type { QueryLogStore } from '../modules/observability/query-log-store.js';
import type { SlowQueryLog } from '../modules/observability/slow-query-log.js';
import { PgDatabase } from './pg/pg-database.js';
import { migratePostgres } from './pg/pg-migrations.js';
import { pgSlowQueryLog } from './pg/pg-query-log-store.js';
import { openSqliteDatabase } from './sqlite/sqlite-database.js';
import { migrateSqlite } from './sqlite/sqlite-migrations.js';
import { sqliteSlowQueryLog } from './sqlite/sqlite-query-log-store.js';
import { prepareStatement } from './sqlite/statement-cache.js';
import type { StorageEngine } from './storage.js';

/** Counting to two million in a recursive CTE: hundreds of milliseconds of SQLite's own work. */
const SQLITE_SLOW =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) AS n FROM c';
const SECRET = 'memory content that must never reach the log';

interface Opened {
  store: QueryLogStore;
  log: SlowQueryLog;
  /** Runs a statement of `sql` with one bound value (`?` / `$1`), through the driver's timed path. */
  run(sql: string, value?: string): Promise<void>;
  slowSql: string;
  fastSql: string;
  /** The slow statement with a bound value. */
  slowWithValue: string;
  close(): Promise<void>;
}

const warned: Record<string, unknown>[] = [];
const logger: Logger = {
  debug() {},
  info() {},
  warn: (fields) => void warned.push(fields as Record<string, unknown>),
  error() {},
  child: () => logger,
};

async function open(engine: StorageEngine, thresholdMs: number): Promise<Opened> {
  if (engine === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-slow-sqlite-'));
    const db = openSqliteDatabase(path.join(dir, 'brain.db'), { busyTimeoutMs: 2000, cacheSizeMb: 8 });
    migrateSqlite(db);
    const { store, log } = sqliteSlowQueryLog(db, { thresholdMs, logger });
    return {
      store,
      log: log as SlowQueryLog,
      run: async (sql, value) => {
        const statement = prepareStatement(db, sql);
        if (value === undefined) statement.get();
        else statement.get(value);
      },
      slowSql: SQLITE_SLOW,
      fastSql: 'SELECT 1 AS fast',
      slowWithValue: SQLITE_SLOW.replace('count(*) AS n', 'count(*) AS n, ? AS secret'),
      async close() {
        await log?.close();
        db.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const db = new PgDatabase(
    {
      dbPath: '',
      busyTimeoutMs: 5000,
      sqliteCacheMb: 16,
      databaseUrl: newPostgresDatabase(),
      databasePoolSize: 4,
      databaseStatementTimeoutMs: 30_000,
      databaseConnectTimeoutMs: 5000,
      databaseSsl: 'disable',
    },
    logger,
  );
  await migratePostgres(db);
  const { store, log } = pgSlowQueryLog(db, { thresholdMs, logger });
  return {
    store,
    log: log as SlowQueryLog,
    run: async (sql, value) => {
      await db.query(sql, value === undefined ? [] : [value]);
    },
    slowSql: 'SELECT pg_sleep(0.05)',
    fastSql: 'SELECT 1 AS fast',
    slowWithValue: 'SELECT pg_sleep(0.05), $1::text AS secret',
    async close() {
      await log?.close();
      await db.close();
    },
  };
}

for (const engine of ENGINES) {
  const skip = engineSkipReason(engine);
  const suite = skip ? describe.skip : describe;
  suite(`slow-query log on ${engine}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let opened: Opened | null = null;
    afterEach(async () => {
      await opened?.close();
      opened = null;
      warned.length = 0;
    });

    it('records a statement slower than 1 ms with its SQL and time, and logs it at warn', async () => {
      opened = await open(engine, 1);
      await opened.run(opened.slowSql);
      await opened.log.flush();
      const rows = await opened.store.list({ limit: 10, order: 'slowest' });
      const row = rows.find((r) => r.sql === opened?.slowSql);
      expect(row, JSON.stringify(rows)).toBeDefined();
      expect(row?.elapsedMs).toBeGreaterThanOrEqual(1);
      expect(Date.parse(row?.createdAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
      expect(warned).toContainEqual({ sql: opened.slowSql, elapsed_ms: row?.elapsedMs });
      // Recording never records itself.
      expect(rows.some((r) => r.sql.includes('query_log'))).toBe(false);
    });

    it('leaves a fast statement out, and never records a bound value', async () => {
      // 30 ms: far above a trivial statement on a loaded machine, far below the slow one.
      opened = await open(engine, 30);
      await opened.run(opened.fastSql);
      await opened.run(opened.slowWithValue, SECRET);
      await opened.log.flush();
      const rows = await opened.store.list({ limit: 10 });
      expect(rows.map((r) => r.sql)).toEqual([opened.slowWithValue]);
      expect(rows[0]?.elapsedMs).toBeGreaterThanOrEqual(30);
      expect(JSON.stringify([rows, warned])).not.toContain(SECRET);
    });
  });
}

describe.skipIf(engineSkipReason('postgres') !== null)('slow-query log on postgres transactions', () => {
  it('times the statements of a transaction, and writes them after it', async () => {
    const db = new PgDatabase(
      {
        dbPath: '',
        busyTimeoutMs: 5000,
        sqliteCacheMb: 16,
        databaseUrl: newPostgresDatabase(),
        databasePoolSize: 2,
        databaseStatementTimeoutMs: 30_000,
        databaseConnectTimeoutMs: 5000,
        databaseSsl: 'disable',
      },
      logger,
    );
    try {
      await migratePostgres(db);
      const { store, log } = pgSlowQueryLog(db, { thresholdMs: 30, logger });
      await db.transaction(async (client) => {
        await client.query('SELECT pg_sleep(0.05) AS in_transaction');
        await client.query('SELECT 1 AS fast_in_transaction');
      });
      await log?.flush();
      expect((await store.list({ limit: 10 })).map((r) => r.sql)).toEqual([
        'SELECT pg_sleep(0.05) AS in_transaction',
      ]);
      await log?.close();
    } finally {
      await db.close();
    }
  });
});

describe('slow-query log on SQLite iterators and statement modes', () => {
  it('times an iterator until it is done, and a plucked statement like any other', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-slow-sqlite-'));
    const db = openSqliteDatabase(path.join(dir, 'brain.db'), { busyTimeoutMs: 2000, cacheSizeMb: 8 });
    try {
      migrateSqlite(db);
      const { store, log } = sqliteSlowQueryLog(db, { thresholdMs: 30, logger });
      // Three rows; the work is done in the iterator's first step, not in iterate().
      const counting = SQLITE_SLOW.replace(
        'SELECT count(*) AS n FROM c',
        'SELECT count(*) FROM c GROUP BY x % 3',
      );
      let rows = 0;
      for (const n of prepareStatement(db, counting).pluck().iterate()) rows += n as number;
      expect(rows).toBe(2_000_000);
      // Stopped early: reported when the loop lets go of it, with the time spent so far (short).
      for (const _ of prepareStatement(db, 'SELECT 1 UNION ALL SELECT 2').iterate()) break;
      expect(prepareStatement(db, SQLITE_SLOW).pluck().get()).toBe(2_000_000);
      await log?.flush();
      expect((await store.list({ limit: 10, order: 'slowest' })).map((r) => r.sql).sort()).toEqual(
        [SQLITE_SLOW, counting].sort(),
      );
      await log?.close();
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
