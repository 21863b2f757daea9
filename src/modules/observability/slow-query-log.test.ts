import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createFixedClock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { openSqliteDatabase, type SqliteDatabase } from '../../storage/sqlite/sqlite-database.js';
import { migrateSqlite } from '../../storage/sqlite/sqlite-migrations.js';
import { SqliteQueryLogStore } from '../../storage/sqlite/sqlite-query-log-store.js';
import { createSlowQueryLog } from './slow-query-log.js';

/** A logger that keeps what was warned. */
function recordingLogger() {
  const warnings: { fields: Record<string, unknown>; msg: string | undefined }[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (fields, msg) => void warnings.push({ fields: fields as Record<string, unknown>, msg }),
    error() {},
    child: () => logger,
  };
  return { logger, warnings };
}

let dir: string;
let db: SqliteDatabase;
let store: SqliteQueryLogStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-slow-log-'));
  db = openSqliteDatabase(path.join(dir, 'brain.db'), { busyTimeoutMs: 2000, cacheSizeMb: 8 });
  migrateSqlite(db);
  store = new SqliteQueryLogStore(db);
});

afterEach(() => {
  vi.useRealTimers();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the slow-query log', () => {
  it('records statements slower than the threshold, logs each at warn, and writes them later', async () => {
    const { logger, warnings } = recordingLogger();
    const log = createSlowQueryLog({ store, logger, thresholdMs: 20 });
    log.observe('SELECT fast FROM memories', 19.9);
    log.observe('SELECT at_threshold FROM memories', 20);
    log.observe('SELECT slow\n   FROM memories  WHERE id = ?', 20.5);
    // Nothing is written inside the caller's turn (its transaction, on SQLite).
    expect(await store.list({ limit: 10 })).toEqual([]);
    await log.flush();
    const rows = await store.list({ limit: 10 });
    expect(rows).toEqual([
      { sql: 'SELECT slow FROM memories WHERE id = ?', elapsedMs: 20.5, createdAt: expect.any(String) },
    ]);
    expect(warnings).toEqual([
      { fields: { sql: 'SELECT slow FROM memories WHERE id = ?', elapsed_ms: 20.5 }, msg: 'slow query' },
    ]);
    await log.close();
  });

  it('logs the first 500 characters of a long statement', async () => {
    const { logger, warnings } = recordingLogger();
    const log = createSlowQueryLog({ store, logger, thresholdMs: 1 });
    const sql = `SELECT ${'a'.repeat(1000)}`;
    log.observe(sql, 5);
    await log.close();
    expect(String(warnings[0]?.fields.sql)).toHaveLength(500);
    expect((await store.list({ limit: 1 }))[0]?.sql).toBe(sql);
  });

  it('drops what overflows its buffer with one warning, then takes entries again once written', async () => {
    const { logger, warnings } = recordingLogger();
    const log = createSlowQueryLog({ store, logger, thresholdMs: 1, maxBuffered: 3 });
    for (let i = 0; i < 6; i++) log.observe(`SELECT ${i}`, 10);
    const full = warnings.filter((w) => w.msg?.startsWith('slow-query buffer full'));
    expect(full).toHaveLength(1);
    expect(full[0]?.fields).toEqual({ max: 3 });
    await log.flush();
    expect((await store.list({ limit: 10 })).map((r) => r.sql).sort()).toEqual([
      'SELECT 0',
      'SELECT 1',
      'SELECT 2',
    ]);
    log.observe('SELECT again', 10);
    await log.close();
    expect(await store.list({ limit: 10 })).toHaveLength(4);
  });

  it('writes what is buffered on close, and nothing after it', async () => {
    const { logger } = recordingLogger();
    const log = createSlowQueryLog({ store, logger, thresholdMs: 1 });
    log.observe('SELECT before_close', 3);
    await log.close();
    log.observe('SELECT after_close', 3);
    await log.flush();
    expect((await store.list({ limit: 10 })).map((r) => r.sql)).toEqual(['SELECT before_close']);
  });

  it('warns and drops a batch the store cannot take, and goes on', async () => {
    const { logger, warnings } = recordingLogger();
    const log = createSlowQueryLog({ store, logger, thresholdMs: 1 });
    db.exec('ALTER TABLE query_log RENAME TO query_log_away');
    log.observe('SELECT lost', 3);
    await log.flush();
    expect(warnings.at(-1)).toMatchObject({
      msg: 'could not record slow queries in query_log',
      fields: { dropped: 1 },
    });
    db.exec('ALTER TABLE query_log_away RENAME TO query_log');
    log.observe('SELECT kept', 3);
    await log.close();
    expect((await store.list({ limit: 10 })).map((r) => r.sql)).toEqual(['SELECT kept']);
  });

  it('purges rows older than 7 days a minute after start, then hourly', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'] });
    const clock = createFixedClock('2026-06-10T12:00:00.000Z');
    const at = (iso: string) => ({ sql: `SELECT '${iso}'`, elapsedMs: 60, createdAt: iso });
    await store.append([
      at('2026-06-01T00:00:00.000Z'),
      at('2026-06-03T13:00:00.000Z'),
      at('2026-06-10T11:00:00.000Z'),
    ]);
    const { logger } = recordingLogger();
    const log = createSlowQueryLog({ store, logger, thresholdMs: 1, clock });
    await vi.advanceTimersByTimeAsync(59_000);
    expect(await store.list({ limit: 10 })).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await store.list({ limit: 10 })).toHaveLength(2);
    clock.advance(2 * 3_600_000);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect((await store.list({ limit: 10 })).map((r) => r.createdAt)).toEqual(['2026-06-10T11:00:00.000Z']);
    await log.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses a threshold of 0, which means no log', () => {
    expect(() => createSlowQueryLog({ store, logger: recordingLogger().logger, thresholdMs: 0 })).toThrow(
      /above 0 ms/,
    );
  });
});
