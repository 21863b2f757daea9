import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../../test/services/engines.js';
import type { BrainConfig } from '../config/config-schema.js';
import { loadConfig, requireValidConfig } from '../config/load-config.js';
import { createFixedClock } from '../core/clock.js';
import { type BrainError, isBrainError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { sha256OfFile } from '../modules/backup/backup-files.js';
import { listBackups, takeBackup } from '../modules/backup/backup-service.js';
import type { RestoreOutcome } from '../modules/backup/restore.js';
import { createPgBackupEngine } from '../storage/pg/pg-backup.js';
import { PG_MIGRATIONS } from '../storage/pg/pg-migrations.js';
import { createSqliteBackupEngine } from '../storage/sqlite/sqlite-backup.js';
import { SQLITE_MIGRATIONS } from '../storage/sqlite/sqlite-migrations.js';
import type { StorageEngine } from '../storage/storage.js';
import { type Brain, buildBrain } from './build-brain.js';
import {
  lastGoodBackup,
  listConfiguredBackups,
  restoreConfiguredStore,
  runBackup,
  verifyConfiguredBackup,
} from './run-backup.js';

const pgSkip = !postgresBaseUrl();
const ENGINES: StorageEngine[] = ['sqlite', 'postgres'];
const label = (engine: StorageEngine, name: string) =>
  `${name} on ${engine}${engine === 'postgres' && pgSkip ? ` (skipped: ${postgresSkipReason()})` : ''}`;

const homes: string[] = [];
const brains: Brain[] = [];
afterEach(async () => {
  for (const b of brains.splice(0)) await b.close();
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});

interface Store {
  engine: StorageEngine;
  home: string;
  config: BrainConfig;
  url: string | null;
}

function newStore(engine: StorageEngine, env: Record<string, string> = {}): Store {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-backup-'));
  homes.push(home);
  const url = engine === 'postgres' ? newPostgresDatabase('brain_backup') : null;
  const config = requireValidConfig(
    loadConfig({
      env: { BRAIN_HOME: home, LOG_LEVEL: 'silent', BRAIN_DATABASE_URL: url ?? '', ...env },
      cwd: home,
    }),
  );
  return { engine, home, config, url };
}

async function open(store: Store): Promise<Brain> {
  const brain = await buildBrain(store.config, {
    logger: pino({ level: 'silent' }),
    migrate: true,
    embedQueue: false,
    prepareVectors: false,
  });
  brains.push(brain);
  return brain;
}

async function close(brain: Brain): Promise<void> {
  brains.splice(brains.indexOf(brain), 1);
  await brain.close();
}

async function contents(store: Store): Promise<string[]> {
  const brain = await open(store);
  try {
    const { items } = await brain.services.memory.list(brain.scope, { limit: 200 });
    return items.map((m) => m.content).sort();
  } finally {
    await close(brain);
  }
}

async function remember(store: Store, ...texts: string[]): Promise<void> {
  const brain = await open(store);
  try {
    for (const content of texts) await brain.services.memory.remember(brain.scope, { content });
  } finally {
    await close(brain);
  }
}

async function setMaintenance(store: Store, on: boolean): Promise<void> {
  const brain = await open(store);
  try {
    await brain.maintenance.set(on, on ? 'restore drill' : null);
  } finally {
    await close(brain);
  }
}

async function pgQuery<R extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Runs `sql` on the store's database directly (not through Brain). */
async function onDatabase(store: Store, sql: string): Promise<void> {
  if (store.url) await pgQuery(store.url, sql);
  else {
    const db = new Database(store.config.dbPath);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  }
}

const yes = async () => true;

async function restore(store: Store, source: { file: string } | { at: Date }): Promise<RestoreOutcome> {
  if (store.url) await setMaintenance(store, true);
  return restoreConfiguredStore(store.config, source, { cwd: store.home, confirm: yes });
}

async function rejection(promise: Promise<unknown>): Promise<BrainError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!isBrainError(error)) throw new Error(`expected a BrainError, got ${String(error)}`);
  return error;
}

/** The backup's file names in its directory, apart from the backups themselves. */
function leftovers(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n.includes('.partial'));
}

for (const engine of ENGINES) {
  describe.skipIf(engine === 'postgres' && pgSkip)(label(engine, 'backup'), () => {
    it('takes a consistent backup while writes go on, with a sha256sum-format checksum, that verifies', async () => {
      const store = newStore(engine);
      const brain = await open(store);
      const before = Array.from({ length: 120 }, (_, i) => ({ content: `before the backup ${i}` }));
      await brain.services.memory.rememberMany(brain.scope, before);
      let stop = false;
      let during = 0;
      const writer = (async () => {
        while (!stop) {
          await brain.services.memory.remember(brain.scope, {
            content: `written during the backup ${during}`,
          });
          during++;
          await new Promise((r) => setImmediate(r));
        }
      })();
      const result = await runBackup(store.config);
      stop = true;
      await writer;
      await close(brain);

      const ext = engine === 'sqlite' ? 'db' : 'pgdump';
      expect(result.file).toBe(path.join(store.config.backupPath, result.name));
      expect(result.name).toMatch(new RegExp(`^brain_\\d{8}_\\d{6}\\.${ext}\\.gz$`));
      expect(result.bytes).toBe(fs.statSync(result.file).size);
      expect(await sha256OfFile(result.file)).toBe(result.sha256);
      expect(fs.readFileSync(`${result.file}.sha256`, 'utf8')).toBe(`${result.sha256}  ${result.name}\n`);
      const check = spawnSync('sha256sum', ['-c', `${result.name}.sha256`], { cwd: store.config.backupPath });
      expect(check.status, check.stderr.toString()).toBe(0);
      expect(leftovers(store.config.backupPath)).toEqual([]);

      const listing = await listConfiguredBackups(store.config);
      expect(listing.backups.map((b) => [b.name, b.checksum, b.kind])).toEqual([[result.name, 'ok', ext]]);
      const report = await verifyConfiguredBackup(store.config, result.name, store.home);
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ ok: true, checksum: 'ok', kind: ext, sha256: result.sha256 });
      // Every memory acknowledged before the backup started is in it; of those written meanwhile, some.
      const inBackup = report.tables?.memories ?? 0;
      expect(inBackup).toBeGreaterThanOrEqual(120);
      expect(inBackup).toBeLessThanOrEqual(120 + during);
      expect(report.schemaVersion).toBe(report.latestVersion);
      const after = await open(store);
      expect((await after.services.memory.list(after.scope, { limit: 1 })).total).toBe(120 + during);
      await close(after);
    });

    it('restores: the backup’s rows back, the data that was there kept aside, migrated, maintenance kept', async () => {
      const store = newStore(engine);
      await remember(store, 'kept in the backup');
      const backup = await runBackup(store.config);
      const tokenAtBackup = engine === 'postgres' ? await changeTokens(store.url as string) : [];
      await remember(store, 'written after the backup');
      const outcome = await restore(store, { file: backup.file });
      expect(outcome.status).toBe('restored');
      if (outcome.status !== 'restored') return;
      expect(outcome.migrations).toEqual([]);
      expect(outcome.plan.tables.memories).toBe(1);
      expect(await contents(store)).toEqual(['kept in the backup']);
      expect(leftovers(path.dirname(store.config.dbPath))).toEqual([]);
      if (engine === 'sqlite') {
        const aside = outcome.aside as string;
        expect(path.dirname(aside)).toBe(path.dirname(store.config.dbPath));
        expect(path.basename(aside)).toMatch(/^brain_old_\d{8}_\d{6}\.db$/);
        const old = new Database(aside, { readonly: true });
        const rows = old.prepare('SELECT content FROM memories ORDER BY content').pluck().all();
        old.close();
        expect(rows).toEqual(['kept in the backup', 'written after the backup']);
        expect(fs.existsSync(`${store.config.dbPath}.vectors`)).toBe(false);
      } else {
        const schema = /schema (brain_old_\d{8}_\d{6})/.exec(outcome.aside ?? '')?.[1] as string;
        expect(schema).toBeDefined();
        const rows = await pgQuery<{ content: string }>(
          store.url as string,
          `SELECT content FROM ${schema}.memories ORDER BY content`,
        );
        expect(rows.map((r) => r.content)).toEqual(['kept in the backup', 'written after the backup']);
        // Every tenant's change token is new, not the one the backup holds: no replica's recall cache
        // answers from the data as it was when an answer was cached under that token.
        const live = await changeTokens(store.url as string);
        expect(live).toHaveLength(1);
        expect(live[0]).not.toBe(tokenAtBackup[0]);
        // The replicas that waited in maintenance mode keep waiting until the operator ends it.
        const brain = await open(store);
        expect((await brain.maintenance.state()).on).toBe(true);
        await close(brain);
      }
    });

    it('restores a backup of an older schema and migrates it to this build’s', async () => {
      const store = newStore(engine);
      await remember(store, 'on the current schema');
      const older = engine === 'sqlite' ? olderSqliteBackup(store) : await olderPgBackup(store);
      const outcome = await restore(store, { file: await older });
      expect(outcome.status).toBe('restored');
      if (outcome.status !== 'restored') return;
      const last = (engine === 'sqlite' ? SQLITE_MIGRATIONS : PG_MIGRATIONS).at(-1);
      expect(outcome.plan.schemaVersion).toBe((last?.version ?? 0) - 1);
      expect(outcome.migrations).toEqual([`${last?.version}_${last?.name}`]);
      expect(outcome.schemaVersion).toBe(last?.version);
      expect(await contents(store)).toEqual(['in the older schema']);
    });

    it('refuses a backup of a newer schema than this build’s, changing nothing', async () => {
      const store = newStore(engine);
      await remember(store, 'the live data');
      const brain = await open(store);
      const latest = (await brain.storage.schema()).latest;
      await close(brain);
      const future = latest + 1;
      await onDatabase(
        store,
        `INSERT INTO schema_migrations (version, name, applied_at) VALUES (${future}, 'from_the_future', '2030-01-01')`,
      );
      const backup = await runBackup(store.config);
      await onDatabase(store, `DELETE FROM schema_migrations WHERE version = ${future}`);
      await remember(store, 'after the backup');

      const error = await rejection(restore(store, { file: backup.file }));
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.message).toContain(`is at schema version ${future}, newer than this build's ${latest}`);
      expect(await contents(store)).toEqual(['after the backup', 'the live data']);
      const report = await verifyConfiguredBackup(store.config, backup.file, store.home);
      expect(report.ok).toBe(false);
      expect(report.problems.join('\n')).toContain(
        `schema version ${future} is newer than this build's ${latest}`,
      );
    });

    it('refuses a damaged backup (checksum, or contents) with nothing changed and nothing left behind', async () => {
      const store = newStore(engine);
      await remember(store, 'the live data');
      const backup = await runBackup(store.config);
      await remember(store, 'after the backup');

      // One flipped byte: the checksum no longer matches.
      const bytes = fs.readFileSync(backup.file);
      const flipped = Buffer.from(bytes);
      const at = Math.floor(flipped.length / 2);
      flipped[at] = (flipped[at] as number) ^ 0xff;
      fs.writeFileSync(backup.file, flipped);
      const checksum = await rejection(restore(store, { file: backup.file }));
      expect(checksum.code).toBe('INVALID_INPUT');
      expect(checksum.message).toMatch(/does not match its checksum|not a complete gzip file/);
      expect((await listBackups(store.config)).backups[0]?.checksum).toBe('mismatch');
      expect((await verifyConfiguredBackup(store.config, backup.file, store.home)).ok).toBe(false);

      // Damaged inside, with a checksum that matches the damage: the engine's own check refuses it.
      fs.writeFileSync(backup.file, zlib.gzipSync(damage(zlib.gunzipSync(bytes), engine)));
      fs.writeFileSync(`${backup.file}.sha256`, `${await sha256OfFile(backup.file)}  ${backup.name}\n`);
      const contentsError = await rejection(restore(store, { file: backup.file }));
      expect(contentsError.code).toBe('INVALID_INPUT');
      expect(contentsError.message).toContain('is not a usable backup');
      const report = await verifyConfiguredBackup(store.config, backup.file, store.home);
      expect(report).toMatchObject({ ok: false, checksum: 'ok' });

      // Cut short, checksum matching: decompression fails part way.
      fs.writeFileSync(backup.file, bytes.subarray(0, Math.floor(bytes.length / 2)));
      fs.writeFileSync(`${backup.file}.sha256`, `${await sha256OfFile(backup.file)}  ${backup.name}\n`);
      const cut = await rejection(restore(store, { file: backup.file }));
      expect(cut.message).toContain('is not a complete gzip file');

      expect(await contents(store)).toEqual(['after the backup', 'the live data']);
      expect(leftovers(store.config.backupPath)).toEqual([]);
      expect(leftovers(path.dirname(store.config.dbPath))).toEqual([]);
      if (engine === 'sqlite')
        expect(
          fs.readdirSync(path.dirname(store.config.dbPath)).filter((n) => n.startsWith('brain_old')),
        ).toEqual([]);
      else expect(await oldSchemas(store)).toEqual([]);
    });

    it('picks the newest backup taken at or before --at', async () => {
      const store = newStore(engine);
      await remember(store, 'first');
      const first = await runBackup(store.config, { clock: createFixedClock('2026-03-01T10:00:00Z') });
      await remember(store, 'second');
      await runBackup(store.config, { clock: createFixedClock('2026-03-01T12:00:00Z') });
      await remember(store, 'third');
      const outcome = await restore(store, { at: new Date('2026-03-01T11:59:59Z') });
      expect(outcome.plan.file).toBe(first.file);
      expect(await contents(store)).toEqual(['first']);
      const none = await rejection(restore(store, { at: new Date('2026-03-01T09:00:00Z') }));
      expect(none.code).toBe('NOT_FOUND');
      expect(none.message).toContain('no ');
    });
  });
}

/** The change tokens of the live schema's tenants (PostgreSQL's recall cache, pg-change-versions.ts). */
async function changeTokens(url: string): Promise<string[]> {
  const rows = await pgQuery<{ token: string }>(
    url,
    'SELECT token FROM memory_change_versions ORDER BY tenant_id',
  );
  return rows.map((r) => r.token);
}

describe('restore on SQLite', () => {
  it('refuses while another connection has the database open, and waits for none', async () => {
    const store = newStore('sqlite');
    await remember(store, 'the live data');
    const backup = await runBackup(store.config);
    const brain = await open(store);
    const error = await rejection(
      restoreConfiguredStore(store.config, { file: backup.file }, { cwd: store.home, confirm: yes }),
    );
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toContain('is open in another process');
    await close(brain);
    // The same holds when a server starts while the confirmation is asked.
    let late: Brain | null = null;
    const again = await rejection(
      restoreConfiguredStore(
        store.config,
        { file: backup.file },
        {
          cwd: store.home,
          confirm: async () => {
            late = await open(store);
            return true;
          },
        },
      ),
    );
    expect(again.code).toBe('CONFLICT');
    if (late) await close(late);
    expect(await contents(store)).toEqual(['the live data']);
    expect(leftovers(path.dirname(store.config.dbPath))).toEqual([]);
  });

  it('restores over a database too damaged to open, keeping the damaged file aside', async () => {
    const store = newStore('sqlite');
    await remember(store, 'the good data');
    const backup = await runBackup(store.config);
    fs.writeFileSync(store.config.dbPath, Buffer.alloc(64 * 1024, 0x5a));
    const outcome = await restore(store, { file: backup.file });
    expect(outcome.status).toBe('restored');
    if (outcome.status === 'restored') expect(fs.readFileSync(outcome.aside as string)[0]).toBe(0x5a);
    expect(await contents(store)).toEqual(['the good data']);
  });

  it('changes nothing when the confirmation is declined', async () => {
    const store = newStore('sqlite');
    await remember(store, 'one');
    const backup = await runBackup(store.config);
    await remember(store, 'two');
    const outcome = await restoreConfiguredStore(
      store.config,
      { file: backup.name },
      {
        cwd: store.home,
        confirm: async () => false,
      },
    );
    expect(outcome.status).toBe('cancelled');
    expect(await contents(store)).toEqual(['one', 'two']);
    expect(fs.readdirSync(path.dirname(store.config.dbPath)).filter((n) => n !== 'brain.db')).toEqual([]);
  });
});

describe.skipIf(pgSkip)(label('postgres', 'restore'), () => {
  it('refuses unless maintenance mode is on for every process', async () => {
    const store = newStore('postgres');
    await remember(store, 'the live data');
    const backup = await runBackup(store.config);
    const error = await rejection(
      restoreConfiguredStore(store.config, { file: backup.file }, { cwd: store.home, confirm: yes }),
    );
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toContain('needs maintenance mode on for every process');
    // The MAINTENANCE_MODE file stops only this machine's processes: not enough.
    fs.writeFileSync(path.join(store.home, 'MAINTENANCE_MODE'), 'restore');
    const fileOnly = await rejection(
      restoreConfiguredStore(store.config, { file: backup.file }, { cwd: store.home, confirm: yes }),
    );
    expect(fileOnly.message).toContain("only this machine's MAINTENANCE_MODE file");
  });

  it('rolls the whole restore back when it fails part way: the live schema as it was, nothing kept aside', async () => {
    const source = newStore('postgres');
    await remember(source, 'the source data');
    // A table whose type the target does not have: its CREATE fails after the move and the first tables.
    await onDatabase(
      source,
      "CREATE SCHEMA elsewhere; CREATE TYPE elsewhere.mood AS ENUM ('calm'); CREATE TABLE zz_extra (m elsewhere.mood)",
    );
    const backup = await runBackup(source.config);
    const target = newStore('postgres');
    await remember(target, 'the target data');
    fs.mkdirSync(target.config.backupPath, { recursive: true });
    const copy = path.join(target.config.backupPath, backup.name);
    fs.copyFileSync(backup.file, copy);
    fs.copyFileSync(`${backup.file}.sha256`, `${copy}.sha256`);
    const error = await rejection(restore(target, { file: copy }));
    expect(error.code).toBe('STORAGE_ERROR');
    expect(error.message).toMatch(/psql failed .*elsewhere/s);
    expect(await contents(target)).toEqual(['the target data']);
    expect(await oldSchemas(target)).toEqual([]);
    const tables = await pgQuery<{ n: string }>(
      target.url as string,
      "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'zz_extra'",
    );
    expect(Number(tables[0]?.n)).toBe(0);
  });
});

describe('backup runs', () => {
  it('removes what the retention no longer keeps, and what interrupted runs left, never the new one', async () => {
    const store = newStore('sqlite');
    await remember(store, 'data');
    const dir = store.config.backupPath;
    fs.mkdirSync(dir, { recursive: true });
    const fake = (name: string) => {
      fs.writeFileSync(path.join(dir, name), 'x');
      fs.writeFileSync(path.join(dir, `${name}.sha256`), `${'0'.repeat(64)}  ${name}\n`);
    };
    fake('brain_20260608_120000.db.gz'); // 2 days old: hourly tier
    fake('brain_20260531_030000.db.gz'); // 10 days: not the newest of its day
    fake('brain_20260531_150000.db.gz'); // 10 days: the newest of its day
    fake('brain_20250101_000000.db.gz'); // over a year
    fake('brain_20250101_000000.pgdump.gz'); // another engine's: its own plan, the newest there
    const dead = spawnSync('true').pid as number;
    fs.writeFileSync(path.join(dir, `brain_20260610_110000.db.gz.${dead}.partial`), 'cut');
    fs.writeFileSync(path.join(dir, 'brain_20260610_100000.db.gz.sha256'), `${'1'.repeat(64)}  x\n`);
    const mine = path.join(dir, `brain_20260610_115959.db.gz.${process.pid}.partial`);
    fs.writeFileSync(mine, 'being written');

    const result = await runBackup(store.config, { clock: createFixedClock('2026-06-10T12:00:00Z') });
    expect(result.name).toBe('brain_20260610_120000.db.gz');
    expect(result.removed.sort()).toEqual(
      [
        `brain_20260610_110000.db.gz.${dead}.partial`,
        'brain_20260610_100000.db.gz.sha256',
        'brain_20260531_030000.db.gz',
        'brain_20250101_000000.db.gz',
      ].sort(),
    );
    expect(fs.readdirSync(dir).sort()).toEqual(
      [
        'brain_20250101_000000.pgdump.gz',
        'brain_20250101_000000.pgdump.gz.sha256',
        'brain_20260531_150000.db.gz',
        'brain_20260531_150000.db.gz.sha256',
        'brain_20260608_120000.db.gz',
        'brain_20260608_120000.db.gz.sha256',
        'brain_20260610_120000.db.gz',
        'brain_20260610_120000.db.gz.sha256',
        path.basename(mine),
      ].sort(),
    );
  });

  it('runs the hook with the file; a failing hook fails the run with its stderr but keeps the backup', async () => {
    const store = newStore('sqlite', { BRAIN_BACKUP_HOOK: 'cp "$1" uploaded.gz' });
    await remember(store, 'data');
    const ok = await runBackup(store.config);
    expect(ok.hook).toMatchObject({ ok: true, code: 0 });
    expect(fs.readFileSync(path.join(store.config.backupPath, 'uploaded.gz'))).toEqual(
      fs.readFileSync(ok.file),
    );

    const failing = { ...store.config, backupHook: 'echo "bucket unreachable" >&2; exit 7' };
    const error = await rejection(runBackup(failing, { clock: createFixedClock('2030-01-01T00:00:00Z') }));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(
      /was written and is kept, but the post-backup hook exited with 7: bucket unreachable/,
    );
    const kept = error.details.backup as { file: string };
    const listing = await listBackups(store.config);
    expect(listing.backups.find((b) => b.file === kept.file)?.checksum).toBe('ok');
  });

  it('reports the newest backup that matches its checksum, and its age, for health', async () => {
    const store = newStore('sqlite');
    await remember(store, 'data');
    expect(await lastGoodBackup(store.config)).toBeNull();
    const older = await runBackup(store.config, { clock: createFixedClock('2026-06-10T10:00:00Z') });
    const newer = await runBackup(store.config, { clock: createFixedClock('2026-06-10T11:00:00Z') });
    const now = new Date('2026-06-10T12:00:00Z');
    expect(await lastGoodBackup(store.config, now)).toEqual({
      file: newer.file,
      time: '2026-06-10T11:00:00.000Z',
      ageSeconds: 3600,
    });
    fs.appendFileSync(newer.file, 'damage');
    expect(await lastGoodBackup(store.config, now)).toEqual({
      file: older.file,
      time: '2026-06-10T10:00:00.000Z',
      ageSeconds: 7200,
    });
    // Another engine's backups do not count.
    expect(
      await lastGoodBackup({ ...store.config, databaseUrl: 'postgres://x@127.0.0.1/x' }, now),
    ).toBeNull();
  });
});

/** A copy of the uncompressed snapshot with damage the engine's check must catch. */
function damage(raw: Buffer, engine: StorageEngine): Buffer {
  if (engine === 'postgres') return raw.subarray(0, Math.floor(raw.length * 0.6));
  const copy = Buffer.from(raw);
  // Page 2 onwards (8 KiB pages): b-tree pages overwritten with garbage; the header stays readable.
  copy.fill(0xa5, 8192 + 100, Math.min(copy.length, 8192 * 3));
  return copy;
}

async function oldSchemas(store: Store): Promise<string[]> {
  const rows = await pgQuery<{ nspname: string }>(
    store.url as string,
    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'brain_old_%'",
  );
  return rows.map((r) => r.nspname);
}

/** A SQLite backup of a database at this build's schema version less one, holding one memory. */
async function olderSqliteBackup(store: Store): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-older-'));
  homes.push(dir);
  const file = path.join(dir, 'older.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(
    'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  for (const m of SQLITE_MIGRATIONS.slice(0, -1)) {
    db.exec(m.sql);
    m.backfill?.(db);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, '2026-01-01');
  }
  db.close();
  await withOlderMemory({ ...store.config, dbPath: file, databaseUrl: undefined });
  const result = await takeBackup(
    createSqliteBackupEngine({ dbPath: file, busyTimeoutMs: 5000 }),
    store.config,
    {
      clock: createFixedClock('2026-01-01T00:00:00Z'),
      logger: silentLogger,
    },
  );
  return result.file;
}

/** A PostgreSQL backup of a database at this build's schema version less one, holding one memory. */
async function olderPgBackup(store: Store): Promise<string> {
  const url = newPostgresDatabase('brain_older');
  await pgQuery(
    url,
    'CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  for (const m of PG_MIGRATIONS.slice(0, -1)) {
    await pgQuery(url, m.sql);
    await pgQuery(url, 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
  }
  const settings = { ...store.config, databaseUrl: url };
  await withOlderMemory(settings);
  const result = await takeBackup(createPgBackupEngine(settings), store.config, {
    clock: createFixedClock('2026-01-01T00:00:00Z'),
    logger: silentLogger,
  });
  return result.file;
}

/** One memory written into the older store by hand: this build's services expect its own schema. */
async function withOlderMemory(config: BrainConfig): Promise<void> {
  const sql =
    "INSERT INTO memories (id, tenant_id, content, content_hash, created_at, updated_at, search_text, change_seq) VALUES ('mem_older', 'default', 'in the older schema', 'h', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'older schema', 1)";
  if (config.databaseUrl)
    await pgQuery(config.databaseUrl, sql.replace(', change_seq', '').replace(', 1)', ')'));
  else {
    const db = new Database(config.dbPath);
    db.exec(sql);
    db.close();
  }
}
