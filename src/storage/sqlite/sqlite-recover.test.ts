import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFiles } from '../../../test/services/temp-files.js';
import { isBrainError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { createHashEmbedder } from '../../modules/embeddings/hash-embedder.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import { openSqliteDatabase } from './sqlite-database.js';
import { sqliteIntegrity } from './sqlite-integrity.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite, migrationStatus } from './sqlite-migrations.js';
import { recoverSqlite } from './sqlite-recover.js';
import { tenantMark } from './sqlite-search-text.js';

const temp = new TempFiles('brain-recover-');
afterEach(() => temp.cleanup());
const scope = { tenantId: 't' };
const NOW = new Date('2026-06-01T12:00:00.000Z');
const OPTIONS = { busyTimeoutMs: 1000, cacheSizeMb: 8, now: NOW };
const embedder = createHashEmbedder(64);

/** A real database file with `n` memories (with vectors, tags, sessions), closed. */
async function filled(n: number): Promise<{ file: string; contents: string[] }> {
  const file = temp.db();
  const db = openSqliteDatabase(file, { busyTimeoutMs: 1000, cacheSizeMb: 8 });
  migrateSqlite(db);
  const store = new SqliteMemoryStore(db, silentLogger);
  const contents = Array.from(
    { length: n },
    (_, i) =>
      `fact number ${i} about the ${['lake', 'garden', 'city'][i % 3]} ${'padding words '.repeat(12)}`,
  );
  for (let i = 0; i < n; i += 50) {
    const rows = await Promise.all(
      contents.slice(i, i + 50).map(async (content, j) => {
        const [embedding] = await embedder.embed([content]);
        return newMemoryRow(content, {
          tags: [`tag${(i + j) % 5}`],
          session: (i + j) % 4 === 0 ? 's1' : null,
          embedding: embedding ?? null,
          embedding_model: embedder.model,
        });
      }),
    );
    await store.insert(scope, rows);
  }
  store.vectors.close();
  db.close();
  return { file, contents };
}

function rootPage(file: string, table: string): { rootpage: number; pageSize: number } {
  const db = new Database(file, { readonly: true });
  const { rootpage } = db.prepare('SELECT rootpage FROM sqlite_master WHERE name = ?').get(table) as {
    rootpage: number;
  };
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  db.close();
  return { rootpage, pageSize };
}

function overwrite(file: string, offset: number, length: number): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(length, 0xa7), 0, length, offset);
  fs.closeSync(fd);
}

function readBack(file: string): { contents: string[]; check: string; vectors: number; tags: number } {
  const db = openSqliteDatabase(file, { busyTimeoutMs: 1000, cacheSizeMb: 8 });
  try {
    const contents = db.prepare('SELECT content FROM memories ORDER BY rid').pluck().all() as string[];
    const check = db.pragma('integrity_check', { simple: true }) as string;
    const vectors = db.prepare('SELECT count(*) FROM memory_embeddings').pluck().get() as number;
    const tags = db.prepare('SELECT count(*) FROM memory_tags').pluck().get() as number;
    expect(migrationStatus(db).current).toBe(migrationStatus(db).latest);
    return { contents, check, vectors, tags };
  } finally {
    db.close();
  }
}

describe('brain db recover (SQLite)', () => {
  it('recovers every memory when the root page of the memories table is garbage, verifies, and keeps the damaged file aside', async () => {
    const { file, contents } = await filled(300);
    const { rootpage, pageSize } = rootPage(file, 'memories');
    overwrite(file, (rootpage - 1) * pageSize, pageSize);
    const before = fs.readFileSync(file);

    const report = recoverSqlite(file, OPTIONS);

    expect(report.keptAside).toBe(path.join(path.dirname(file), 'brain_corrupt_20260601_120000.db'));
    expect(fs.readFileSync(report.keptAside).equals(before)).toBe(true);
    expect(report.schemaRead).toBe(true);
    expect(report.pages.looseRecovered).toBeGreaterThan(0);
    expect(report.tables.memories).toBe(300);
    const back = readBack(file);
    expect(back.check).toBe('ok');
    expect(back.contents).toEqual(contents);
    expect(back.vectors).toBe(300);
    expect(back.tags).toBe(300);
    // The rebuilt text index and statistics agree with the rows.
    const db = openSqliteDatabase(file, { busyTimeoutMs: 1000, cacheSizeMb: 8 });
    try {
      const checked = await sqliteIntegrity(db, file).check();
      expect(checked.checks.filter((c) => c.status === 'fail')).toEqual([]);
      const hits = db
        .prepare('SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?')
        .pluck()
        .get(`search_text : ${tenantMark('t')}garden`);
      expect(hits).toBe(100);
    } finally {
      db.close();
    }
    expect(fs.readdirSync(path.dirname(file)).filter((n) => n.includes('.recover-'))).toEqual([]);
  });

  it('recovers the readable rows when a leaf page in the middle is garbage, losing only that page', async () => {
    const { file, contents } = await filled(300);
    const { pageSize } = rootPage(file, 'memories');
    const db = new Database(file, { readonly: true });
    // A leaf page of the memories table, found through SQLite's own page map.
    const leaf = db
      .prepare(
        "SELECT pageno FROM dbstat WHERE name = 'memories' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 3",
      )
      .pluck()
      .get() as number;
    const onLeaf = db
      .prepare("SELECT ncell FROM dbstat WHERE name = 'memories' AND pageno = ?")
      .pluck()
      .get(leaf) as number;
    db.close();
    overwrite(file, (leaf - 1) * pageSize, pageSize);

    const report = recoverSqlite(file, OPTIONS);
    const back = readBack(file);
    expect(back.check).toBe('ok');
    expect(report.pages.damaged).toBeGreaterThanOrEqual(1);
    expect(back.contents.length).toBe(300 - onLeaf);
    expect(contents).toEqual(expect.arrayContaining(back.contents));
    // Vectors and tags of the lost memories went with them (no dangling row).
    expect(back.vectors).toBe(300 - onLeaf);
  });

  it('recovers from a file whose 100-byte header is garbage (page size guessed, freelist unknown)', async () => {
    const { file, contents } = await filled(120);
    overwrite(file, 0, 100);
    expect(() => new Database(file, { readonly: true }).prepare('SELECT 1 FROM memories').get()).toThrow();

    const report = recoverSqlite(file, OPTIONS);
    expect(report.headerValid).toBe(false);
    const back = readBack(file);
    expect(back.check).toBe('ok');
    expect(back.contents).toEqual(contents);
  });

  it('refuses while another process holds the database, and changes nothing', async () => {
    const { file } = await filled(10);
    const { rootpage, pageSize } = rootPage(file, 'memories');
    overwrite(file, (rootpage - 1) * pageSize, pageSize);
    const before = fs.readFileSync(file);
    // Another process's idle connection (as a running server has): a child, since locks are per process.
    const { spawn } = await import('node:child_process');
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const D = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))}); const d = new D(${JSON.stringify(file)}); d.prepare('SELECT count(*) FROM sqlite_master').get(); console.log('open'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      let error: unknown;
      try {
        recoverSqlite(file, OPTIONS);
      } catch (e) {
        error = e;
      }
      expect(isBrainError(error) && error.code).toBe('STORAGE_BUSY');
      expect((error as Error).message).toMatch(/is open in another process .*stop every process using it/);
    } finally {
      holder.kill();
    }
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    // Only the file and the killed holder's own -wal/-shm: no copy, nothing kept aside.
    expect(fs.readdirSync(path.dirname(file)).filter((n) => !n.startsWith('brain.db'))).toEqual([]);
  });

  it('refuses an intact database unless --force, and then rebuilds it with the same rows', async () => {
    const { file, contents } = await filled(20);
    expect(() => recoverSqlite(file, OPTIONS)).toThrow(/passes SQLite's quick_check: nothing to recover/);
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['brain.db']);
    recoverSqlite(file, { ...OPTIONS, force: true });
    expect(readBack(file).contents).toEqual(contents);
  });
});
