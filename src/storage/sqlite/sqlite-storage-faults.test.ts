import fs from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFiles } from '../../../test/services/temp-files.js';
import { isBrainError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { NewMemory } from '../../modules/memory/memory-store.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import { openSqliteDatabase } from './sqlite-database.js';
import { SqliteFileGuard } from './sqlite-file-guard.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite } from './sqlite-migrations.js';
import { SqliteSessionStore } from './sqlite-session-store.js';

const NOW = '2026-06-01T12:00:00.000Z';
const scope = { tenantId: 't' };

const temp = new TempFiles('brain-faults-');
afterEach(() => temp.cleanup());
const tempDb = () => temp.db();

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  msg: string | undefined;
}

/** A fake at the edge: a logger that records what the driver logs. */
function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (fields: object, msg?: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, msg });
    };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return { logger, lines };
}

function open(file: string, busyTimeoutMs = 5000) {
  const db = openSqliteDatabase(file, { busyTimeoutMs, cacheSizeMb: 8 });
  migrateSqlite(db);
  const guard = new SqliteFileGuard(file);
  const { logger, lines } = recordingLogger();
  const store = new SqliteMemoryStore(db, logger, { file: guard });
  const sessions = new SqliteSessionStore(db, { logger, file: guard });
  const close = () => {
    store.vectors.close();
    if (db.open) db.close();
  };
  temp.onCleanup(close);
  return { db, guard, store, sessions, lines, close };
}

function memory(content: string): NewMemory {
  return newMemoryRow(content, { id: newId('mem'), created_at: NOW });
}

/** The BrainError a promise rejects with (fails the test when it resolves or throws something else). */
async function rejection(promise: Promise<unknown>) {
  const error = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  if (!isBrainError(error)) throw error;
  return error;
}

function countIn(db: Database.Database): number {
  return (db.prepare('SELECT count(*) AS n FROM memories').get() as { n: number }).n;
}

describe('sqlite driver under storage faults', () => {
  it('refuses writes once the database file is deleted, acknowledging none that went to the orphan', async () => {
    const file = tempDb();
    const h = open(file);
    const [first] = await h.store.insert(scope, [memory('kept before the deletion')]);
    fs.rmSync(file);

    // The write in flight commits to the unlinked inode: it must be an error, not "created".
    const inFlight = await rejection(h.store.insert(scope, [memory('went to the orphan')]));
    expect(inFlight.code).toBe('STORAGE_REPLACED');
    expect(inFlight.message).toContain(`the database file ${file} was deleted or replaced while Brain`);
    expect(inFlight.message).toMatch(/writes are refused so none is lost — restart Brain/);
    expect(inFlight.message).toMatch(/not kept/);
    // Every later write is refused before it writes anything.
    const later = await rejection(h.store.insert(scope, [memory('refused')]));
    expect(later.code).toBe('STORAGE_REPLACED');
    expect(countIn(h.db)).toBe(2);
    const session = await rejection(
      h.sessions.open(scope, { id: 's1', project: null, client: null, now: NOW }),
    );
    expect(session.code).toBe('STORAGE_REPLACED');
    expect(h.guard.check()).toMatchObject({ ok: false });
    // Reads still answer from the open handle.
    expect((await h.store.get(scope, first?.id ?? '', NOW))?.content).toBe('kept before the deletion');
  });

  it('notices a file renamed over the database (a restore while running)', async () => {
    const file = tempDb();
    const h = open(file);
    await h.store.insert(scope, [memory('original')]);
    const other = `${file}.restored`;
    fs.writeFileSync(other, 'another file');
    fs.renameSync(other, file);
    const error = await rejection(h.store.insert(scope, [memory('after the rename')]));
    expect(error.code).toBe('STORAGE_REPLACED');
    expect(h.guard.check().message).toMatch(/was deleted or replaced/);
  });

  it('the periodic check notices a deleted write-ahead log, refuses writes, and closing keeps what was written', async () => {
    const file = tempDb();
    const h = open(file);
    await h.store.insert(scope, [memory('written before the log was deleted')]);
    expect(h.guard.check().ok).toBe(true);
    fs.rmSync(`${file}-wal`);
    const check = h.guard.check();
    expect(check.ok).toBe(false);
    expect(check.message).toMatch(/write-ahead log .*-wal was deleted or replaced.*restart Brain/);
    expect((await rejection(h.store.insert(scope, [memory('refused')]))).code).toBe('STORAGE_REPLACED');
    h.close();
    const reopened = new Database(file, { readonly: true });
    try {
      expect(countIn(reopened)).toBe(1);
    } finally {
      reopened.close();
    }
  });

  /** A store on a fresh file whose write lock another connection holds (as a sqlite3 shell left open). */
  async function lockedStore() {
    const file = tempDb();
    const h = open(file, 100);
    const [saved] = await h.store.insert(scope, [memory('recalled while locked')]);
    const holder = new Database(file);
    temp.onCleanupFirst(() => holder.close());
    holder.exec('BEGIN IMMEDIATE');
    return { ...h, id: saved?.id ?? '', holder };
  }

  it('maps a write lock held past the busy timeout to STORAGE_BUSY with what to do, and logs it', async () => {
    const h = await lockedStore();
    const busy = await rejection(h.store.insert(scope, [memory('blocked')]));
    expect(busy.code).toBe('STORAGE_BUSY');
    expect(busy.message).toMatch(/locked by another process .*wait a few seconds and retry/);
    expect(h.lines.some((l) => l.level === 'warn' && l.fields.code === 'STORAGE_BUSY')).toBe(true);
    h.holder.exec('ROLLBACK');
  });

  it('reads answer while another process holds the write lock, showing the pending access counts', async () => {
    const h = await lockedStore();
    await h.store.touch(scope, [h.id], '2026-06-01T12:05:00.000Z');
    const got = await h.store.get(scope, h.id, NOW);
    expect(got).toMatchObject({ access_count: 1, accessed_at: '2026-06-01T12:05:00.000Z' });
    const listed = await h.store.list(
      scope,
      { limit: 10, offset: 0, sort: 'created_at', order: 'desc' },
      NOW,
    );
    expect(listed.items.map((m) => m.access_count)).toEqual([1]);
    const overview = await h.store.overview(scope, { project: null, limit: 5, priorityTypes: [], now: NOW });
    expect(overview.recent[0]?.access_count).toBe(1);
    h.holder.exec('ROLLBACK');
    // Once the lock is free, the next read writes the pending count, once.
    expect((await h.store.get(scope, h.id, NOW))?.access_count).toBe(1);
    const written = h.holder.prepare('SELECT access_count FROM memories WHERE id = ?').get(h.id);
    expect(written).toEqual({ access_count: 1 });
  });

  it('maps a full disk (SQLITE_FULL) to STORAGE_FULL, says what to do and logs the cause', async () => {
    const file = tempDb();
    const h = open(file);
    const pages = Number(h.db.pragma('page_count', { simple: true }));
    // A real SQLITE_FULL without filling a disk: the file may not grow by another page.
    h.db.pragma(`max_page_count = ${pages}`);
    const error = await rejection(h.store.insert(scope, [memory('x'.repeat(200_000))]));
    expect(error.code).toBe('STORAGE_FULL');
    expect(error.message).toMatch(/is full \(SQLITE_FULL\); nothing was written: free disk space/);
    const logged = h.lines.find((l) => l.level === 'error' && l.fields.code === 'STORAGE_FULL');
    expect((logged?.fields.cause as { code?: string } | undefined)?.code).toBe('SQLITE_FULL');
    expect(countIn(h.db)).toBe(0);
  });

  it('maps a damaged page found after start to STORAGE_CORRUPT with the recovery advice, and logs the cause', async () => {
    const file = tempDb();
    const first = open(file);
    await first.store.insert(
      scope,
      Array.from({ length: 300 }, (_, i) => memory(`memory number ${i} ${'padding '.repeat(20)}`)),
    );
    const { rootpage } = first.db
      .prepare("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'memories'")
      .get() as { rootpage: number };
    const pageSize = Number(first.db.pragma('page_size', { simple: true }));
    first.close();
    // Garbage over the memories table's root b-tree page; page 1 (header, schema) stays intact.
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(pageSize, 0xa7), 0, pageSize, (rootpage - 1) * pageSize);
    fs.closeSync(fd);

    const h = open(file);
    const error = await rejection(
      h.store.list(scope, { limit: 10, offset: 0, sort: 'created_at', order: 'desc' }, NOW),
    );
    expect(error.code).toBe('STORAGE_CORRUPT');
    expect(error.message).toContain(`database file ${file} is corrupt`);
    expect(error.message).toMatch(/stop Brain, then run `brain db recover`.*or restore a backup/);
    const logged = h.lines.find((l) => l.level === 'error' && l.fields.code === 'STORAGE_CORRUPT');
    expect((logged?.fields.cause as { code?: string } | undefined)?.code).toMatch(/^SQLITE_CORRUPT/);
  });
});
