import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BrainError } from '../../core/errors.js';
import type { RecoverReport } from '../../core/integrity.js';
import { openSqliteDatabase, type SqliteDatabase } from './sqlite-database.js';
import { sqliteCodeOf } from './sqlite-errors.js';
import { migrateSqlite, migrationStatus } from './sqlite-migrations.js';
import {
  BtreeReader,
  type FoundRecord,
  PageFile,
  readSchema,
  type SchemaEntry,
  type SqlValue,
} from './sqlite-salvage.js';
import { rebuildSearchText } from './sqlite-search-rebuild.js';
import { vectorIndexDirFor } from './vector-index-file.js';

/** Free space needed beside the database for the recovered copy, per byte of the damaged file. */
const ROOM = 1.1;

/** Tables whose rows are derived (rebuilt by the reindex) or made fresh by the migrations: not copied. */
function derived(name: string): boolean {
  return (
    name === 'search_stats' ||
    name === 'schema_migrations' ||
    name.startsWith('memories_fts') ||
    name.startsWith('sqlite_')
  );
}

export type { RecoverReport } from '../../core/integrity.js';

export interface RecoverOptions {
  busyTimeoutMs: number;
  cacheSizeMb: number;
  /** Recover even when SQLite's quick_check finds nothing wrong. */
  force?: boolean;
  now?: Date;
}

/** A table's columns as a record holds them, and how to check that a record can belong to it. */
interface TableShape {
  name: string;
  withoutRowid: boolean;
  /** Column names in record order. */
  columns: string[];
  /** Index of the INTEGER PRIMARY KEY column (stored as the rowid, NULL in the record), or -1. */
  rowidAlias: number;
  affinity: ('integer' | 'text' | 'real' | 'blob' | 'numeric' | 'any')[];
  notNull: boolean[];
}

function affinityOf(declared: string): TableShape['affinity'][number] {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'integer';
  if (/CHAR|CLOB|TEXT/.test(t)) return 'text';
  if (t.includes('BLOB')) return 'blob';
  if (t === '') return 'any';
  if (/REAL|FLOA|DOUB/.test(t)) return 'real';
  return 'numeric';
}

/** The shapes of the tables that `sql` (CREATE TABLE statements) creates, read back from a scratch database. */
function shapesOf(statements: { name: string; sql: string }[]): TableShape[] {
  const scratch = new Database(':memory:');
  try {
    const shapes: TableShape[] = [];
    for (const { name, sql } of statements) {
      try {
        scratch.exec(sql);
      } catch {
        continue;
      }
      const info = scratch.pragma(`table_info("${name.replaceAll('"', '""')}")`) as {
        cid: number;
        name: string;
        type: string;
        notnull: number;
        pk: number;
      }[];
      const withoutRowid = /without\s+rowid/i.test(sql);
      // A WITHOUT ROWID table's record holds its primary key columns first, then the others in order.
      const ordered = withoutRowid
        ? [...info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk), ...info.filter((c) => c.pk === 0)]
        : info;
      const pks = info.filter((c) => c.pk > 0);
      const alias =
        !withoutRowid && pks.length === 1 && pks[0]?.type.toUpperCase() === 'INTEGER'
          ? ordered.findIndex((c) => c.pk > 0)
          : -1;
      shapes.push({
        name,
        withoutRowid,
        columns: ordered.map((c) => c.name),
        rowidAlias: alias,
        affinity: ordered.map((c) => affinityOf(c.type)),
        notNull: ordered.map((c) => c.notnull === 1 || (withoutRowid && c.pk > 0)),
      });
    }
    return shapes;
  } finally {
    scratch.close();
  }
}

function fits(value: SqlValue, affinity: TableShape['affinity'][number]): boolean {
  if (value === null) return true;
  switch (affinity) {
    case 'integer':
      return typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value));
    case 'text':
      return typeof value === 'string';
    case 'real':
      return typeof value === 'number' || typeof value === 'bigint';
    // Brain's BLOB columns hold only blobs: the check keeps a text table's page from matching them.
    case 'blob':
      return Buffer.isBuffer(value);
    case 'numeric':
      return !Buffer.isBuffer(value);
    default:
      return true;
  }
}

/** Whether a record found on a page no tree reached can be a row of `shape`. */
function matches(record: FoundRecord, shape: TableShape): boolean {
  if (shape.withoutRowid || record.values.length !== shape.columns.length) return false;
  return record.values.every(
    (v, i) =>
      fits(v, shape.affinity[i] ?? 'any') && (v !== null || !shape.notNull[i] || i === shape.rowidAlias),
  );
}

/** The row values of a record, its rowid in the INTEGER PRIMARY KEY column. */
function rowOf(record: FoundRecord, shape: TableShape): SqlValue[] {
  const values = record.values.slice(0, shape.columns.length);
  if (shape.rowidAlias >= 0 && shape.rowidAlias < values.length && values[shape.rowidAlias] === null)
    values[shape.rowidAlias] = record.rowid;
  return values;
}

function stamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
}

function fsyncPath(target: string): void {
  const fd = fs.openSync(target, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Takes the file for this process alone: in exclusive locking mode SQLite's lock conflicts with any
 * other connection, even an idle server's. Folds the WAL into the file, and says whether SQLite finds
 * it intact. A file SQLite cannot read at all (its header destroyed) cannot be locked this way: then
 * there is no holder, and the caller goes on (no Brain can have that file open and working).
 */
function takeFile(dbPath: string): { holder: SqliteDatabase | null; intact: boolean } {
  const holder = new Database(dbPath, { timeout: 0, fileMustExist: true });
  try {
    holder.pragma('locking_mode = EXCLUSIVE');
    holder.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    holder.close();
    const code = sqliteCodeOf(error);
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
      throw new BrainError(
        'STORAGE_BUSY',
        `database file ${dbPath} is open in another process (a running brain serve, brain mcp or sqlite3 shell): stop every process using it, then run brain db recover again`,
        { path: dbPath },
      );
    return { holder: null, intact: false };
  }
  let intact = false;
  try {
    const rows = holder.pragma('quick_check') as Record<string, string>[];
    intact = rows.length === 1 && Object.values(rows[0] ?? {})[0] === 'ok';
  } catch {
    intact = false;
  }
  try {
    // A check that met a damaged page may have ended the transaction already; the lock stays either way.
    if (holder.inTransaction) holder.exec('COMMIT');
  } catch {
    // Nothing was written: there is nothing to commit or lose.
  }
  try {
    holder.pragma('wal_checkpoint(TRUNCATE)');
  } catch {
    // The log's pages are read from it directly (PageFile) when they cannot be folded in.
  }
  return { holder, intact };
}

/** Copies every row the salvage could read into `target` (a fresh database at the current schema). */
function copyRows(
  target: SqliteDatabase,
  file: PageFile,
): { tables: Record<string, number>; pages: RecoverReport['pages']; schemaRead: boolean } {
  const reader = new BtreeReader(file);
  let schema: SchemaEntry[] = [];
  try {
    schema = readSchema(reader);
  } catch {
    schema = [];
  }
  const newTables = target
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'")
    .all() as { name: string; sql: string }[];
  const wanted = new Set(newTables.map((t) => t.name).filter((n) => !derived(n)));
  const oldTables = schema.filter((e) => e.type === 'table' && e.sql && !/^create\s+virtual/i.test(e.sql));
  const schemaRead = oldTables.some((t) => t.name === 'memories');
  // Shapes of the old file's tables when its schema is readable, else the current schema's.
  const shapes = shapesOf(
    schemaRead ? oldTables.map((t) => ({ name: t.name, sql: t.sql as string })) : newTables,
  );
  const newColumns = new Map(shapesOf(newTables).map((s) => [s.name, new Set(s.columns)]));
  const statements = new Map<string, Database.Statement>();
  const counts: Record<string, number> = {};
  const insert = (shape: TableShape, values: SqlValue[]) => {
    const target_ = newColumns.get(shape.name);
    if (!wanted.has(shape.name) || !target_) return;
    const picked = shape.columns
      .map((c, i) => [c, i] as const)
      .filter(([c, i]) => target_.has(c) && i < values.length);
    const key = `${shape.name}\u0000${picked.map(([c]) => c).join(',')}`;
    let statement = statements.get(key);
    if (!statement) {
      const cols = picked.map(([c]) => `"${c}"`).join(', ');
      statement = target.prepare(
        `INSERT OR IGNORE INTO "${shape.name}" (${cols}) VALUES (${picked.map(() => '?').join(', ')})`,
      );
      statements.set(key, statement);
    }
    const info = statement.run(...picked.map(([, i]) => values[i] ?? null));
    counts[shape.name] = (counts[shape.name] ?? 0) + info.changes;
  };
  // Every tree of the old schema is walked (indexes and derived tables too) so their pages count as found.
  for (const entry of schema) {
    if (entry.rootpage <= 0) continue;
    const records = reader.tree(entry.rootpage);
    const shape = shapes.find((s) => s.name === entry.name);
    if (entry.type !== 'table' || !shape) continue;
    for (const record of records) insert(shape, rowOf(record, shape));
  }
  // Pages no tree reached and not on the freelist: leaves of a tree whose inner pages are damaged.
  const free = file.freePages();
  let loose = 0;
  let looseRecovered = 0;
  for (let n = 2; n <= file.pageCount; n++) {
    if (reader.reached.has(n) || free.has(n)) continue;
    const records = reader.loosePage(n);
    if (!records || records.length === 0) continue;
    loose++;
    const owners = shapes.filter((s) => records.every((r) => matches(r, s)));
    // A page whose records fit no table, or more than one, is left out rather than guessed.
    if (owners.length !== 1) continue;
    const owner = owners[0] as TableShape;
    looseRecovered++;
    for (const record of records) insert(owner, rowOf(record, owner));
  }
  return {
    tables: counts,
    schemaRead,
    pages: { total: file.pageCount, damaged: reader.damaged.size, free: free.size, loose, looseRecovered },
  };
}

/** Removes rows that point at a row the salvage did not find (only rowid tables can be addressed so). */
function dropDangling(db: SqliteDatabase): void {
  const rows = db.pragma('foreign_key_check') as { table: string; rowid: number | null }[];
  for (const r of rows)
    if (r.rowid !== null)
      db.prepare(`DELETE FROM "${r.table.replaceAll('"', '""')}" WHERE rowid = ?`).run(r.rowid);
}

/** The recovered file must pass SQLite's full check, its foreign keys, and be at the current schema. */
function verify(db: SqliteDatabase, file: string): void {
  const check = (db.pragma('integrity_check') as Record<string, string>[]).map((r) => Object.values(r)[0]);
  const keys = db.pragma('foreign_key_check') as unknown[];
  const status = migrationStatus(db);
  if (check.length !== 1 || check[0] !== 'ok' || keys.length > 0 || status.current !== status.latest)
    throw new BrainError(
      'STORAGE_ERROR',
      `the recovered copy ${file} did not verify (integrity: ${check.slice(0, 3).join('; ')}, ${keys.length} dangling references, schema ${status.current}/${status.latest}); the damaged database was left in place`,
    );
}

/**
 * `brain db recover`: reads every row that can still be read from the damaged file (page by page, see
 * sqlite-salvage.ts) into a new file beside it at the current schema, rebuilds the text index, the
 * statistics and the tag table from the rows, verifies it (integrity_check, foreign keys, schema), and
 * only then swaps it in: the damaged file is kept as `brain_corrupt_<time>.db` (its `-wal` beside it),
 * the new one is renamed over the path (atomic), and the saved vector indexes (derived) are removed.
 * Refused while another process has the file open, and when the file is intact unless `force`.
 */
export function recoverSqlite(dbPath: string, options: RecoverOptions): RecoverReport {
  const started = performance.now();
  if (!fs.existsSync(dbPath))
    throw new BrainError('NOT_FOUND', `database file ${dbPath} does not exist: nothing to recover`, {
      path: dbPath,
    });
  const dir = path.dirname(dbPath);
  const size =
    fs.statSync(dbPath).size + (fs.statSync(`${dbPath}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  const freeSpace = (() => {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  })();
  if (freeSpace < size * ROOM)
    throw new BrainError(
      'STORAGE_FULL',
      `brain db recover needs about ${Math.ceil((size * ROOM) / 1048576)} MiB free beside ${dbPath} for the recovered copy, the disk has ${Math.floor(freeSpace / 1048576)} MiB: free space first`,
      { path: dbPath },
    );
  const { holder, intact } = takeFile(dbPath);
  const tmp = path.join(dir, `.${path.basename(dbPath)}.recover-${process.pid}.tmp`);
  let swapped = false;
  try {
    if (intact && !options.force)
      throw new BrainError(
        'CONFLICT',
        `database file ${dbPath} passes SQLite's quick_check: nothing to recover (brain db check shows the details; brain db reindex repairs the text and vector data; --force rebuilds the file anyway)`,
        { path: dbPath },
      );
    for (const stale of [tmp, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(stale, { force: true });
    const target = openSqliteDatabase(tmp, {
      busyTimeoutMs: options.busyTimeoutMs,
      cacheSizeMb: options.cacheSizeMb,
    });
    let copied: ReturnType<typeof copyRows>;
    let headerValid = false;
    try {
      migrateSqlite(target);
      const file = new PageFile(dbPath);
      headerValid = file.headerValid;
      try {
        target.pragma('foreign_keys = OFF');
        copied = target.transaction(() => copyRows(target, file)).immediate();
        target.pragma('foreign_keys = ON');
      } finally {
        file.close();
      }
      target.transaction(() => dropDangling(target)).immediate();
      rebuildSearchText(target);
      verify(target, tmp);
      // What the new file holds once dangling rows are gone (the copy counted what it inserted).
      for (const table of Object.keys(copied.tables))
        copied.tables[table] = target.prepare(`SELECT count(*) FROM "${table}"`).pluck().get() as number;
      target.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      target.close();
    }
    fsyncPath(tmp);
    const keptAside = path.join(dir, `brain_corrupt_${stamp(options.now ?? new Date())}.db`);
    // The holder's lock kept every other process out until here; closing it empties the log.
    holder?.close();
    fs.linkSync(dbPath, keptAside);
    for (const suffix of ['-wal', '-shm']) {
      // The damaged file's log must never be replayed onto the new file: it goes aside with it.
      if (fs.existsSync(`${dbPath}${suffix}`)) fs.renameSync(`${dbPath}${suffix}`, `${keptAside}${suffix}`);
    }
    fs.renameSync(tmp, dbPath);
    swapped = true;
    fsyncPath(dir);
    const vectors = vectorIndexDirFor(dbPath);
    if (vectors) fs.rmSync(vectors, { recursive: true, force: true });
    return {
      path: dbPath,
      keptAside,
      headerValid,
      schemaRead: copied.schemaRead,
      tables: copied.tables,
      pages: copied.pages,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (holder?.open) holder.close();
    if (!swapped) for (const stale of [tmp, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(stale, { force: true });
  }
}
