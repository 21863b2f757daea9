/**
 * The backup faults of issue 11 against the built `brain`: a kill -9 in the middle of a backup leaves
 * nothing that passes for a backup; a full disk fails the backup cleanly and keeps the previous ones; a
 * kill -9 in the middle of a restore leaves the old store in place (SQLite file, PostgreSQL schema).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../services/engines.js';
import { BRAIN_BIN, brainEnv, runBrain, startServe, tempHome } from './brain-process.js';

const homes: string[] = [];
afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

function newHome(): string {
  const dir = tempHome('brain-backup-e2e-');
  homes.push(dir);
  return dir;
}

const dbOf = (home: string) => path.join(home, 'data', 'brain.db');

/** Incompressible rows in a side table of the SQLite file: `mb` MiB of random bytes, written in one go. */
function padSqlite(home: string, mb: number): void {
  const db = new Database(dbOf(home));
  db.exec(`CREATE TABLE IF NOT EXISTS zz_pad (b BLOB NOT NULL);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${mb * 256})
    INSERT INTO zz_pad SELECT randomblob(4096) FROM c;`);
  db.close();
}

function spawnBrain(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BRAIN_BIN, ...args], {
    env: brainEnv(env),
    cwd: env.BRAIN_HOME,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return { child, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

/** Polls until `found()` returns something, or fails after `ms`. */
async function waitFor<T>(found: () => T | null | Promise<T | null>, what: string, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await found();
    if (value !== null) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function contents(env: Record<string, string>): Promise<string[]> {
  const listed = await runBrain(['list', '--json'], env);
  expect(listed.code, listed.stderr).toBe(0);
  return (JSON.parse(listed.stdout) as { items: { content: string }[] }).items.map((m) => m.content).sort();
}

async function backup(env: Record<string, string>): Promise<{ file: string; name: string }> {
  const run = await runBrain(['backup', '--json'], env);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
}

async function listing(env: Record<string, string>) {
  const run = await runBrain(['backup', 'list', '--json'], env);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { backups: { name: string; checksum: string }[]; removed: string[] };
}

describe('backup faults (SQLite)', () => {
  it('kill -9 in the middle of a backup leaves no file that `backup list` takes for a backup', async () => {
    const home = newHome();
    const env = { BRAIN_HOME: home };
    expect((await runBrain(['remember', 'the data'], env)).code).toBe(0);
    padSqlite(home, 60);
    const dir = path.join(home, 'backups');
    const running = spawnBrain(['backup'], env);
    // Killed while the compressed file is being written: the moment it could be taken for a backup.
    const partial = await waitFor(() => {
      const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
      const gz = names.find((n) => /\.db\.gz\.\d+\.partial$/.test(n));
      return gz && fs.statSync(path.join(dir, gz)).size > 0 ? gz : null;
    }, 'the backup to start writing');
    running.child.kill('SIGKILL');
    expect(await running.exited).toBeNull();
    expect(fs.readdirSync(dir).filter((n) => /\.gz$/.test(n))).toEqual([]);

    const after = await listing(env);
    expect(after.backups).toEqual([]);
    expect(after.removed).toContain(partial);
    expect(fs.readdirSync(dir)).toEqual([]);
    const good = await backup(env);
    expect((await listing(env)).backups).toEqual([
      expect.objectContaining({ name: good.name, checksum: 'ok' }),
    ]);
  });

  it('kill -9 in the middle of a restore leaves the old database in place; the next restore cleans up', async () => {
    const home = newHome();
    const env = { BRAIN_HOME: home };
    expect((await runBrain(['remember', 'in the backup'], env)).code).toBe(0);
    padSqlite(home, 60);
    const taken = await backup(env);
    expect((await runBrain(['remember', 'after the backup'], env)).code).toBe(0);
    const data = path.dirname(dbOf(home));
    const running = spawnBrain(['restore', taken.file, '--yes'], env);
    await waitFor(
      () => (fs.readdirSync(data).some((n) => n.startsWith('brain.db.restore.')) ? true : null),
      'the restore to start staging',
    );
    running.child.kill('SIGKILL');
    await running.exited;
    expect(await contents(env)).toEqual(['after the backup', 'in the backup']);
    expect(fs.readdirSync(data).filter((n) => n.startsWith('brain_old_'))).toEqual([]);

    const again = await runBrain(['restore', taken.file, '--yes'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(await contents(env)).toEqual(['in the backup']);
    expect(fs.readdirSync(data).filter((n) => n.includes('.partial'))).toEqual([]);
  });

  it('refuses to restore while `brain serve` has the database open', async () => {
    const home = newHome();
    const env = { BRAIN_HOME: home };
    expect((await runBrain(['remember', 'live'], env)).code).toBe(0);
    const taken = await backup(env);
    const server = await startServe(env);
    try {
      const run = await runBrain(['restore', taken.file, '--yes'], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('is open in another process');
      expect(run.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await server.stop();
    }
    expect(await contents(env)).toEqual(['live']);
  });
});

describe('a full disk during a backup', () => {
  let mount: string;
  beforeAll(() => {
    mount = newHome();
    // Root here: a 2 MiB tmpfs is the backup disk. No fallback: this test exists to fail when it cannot run.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount]);
  });
  afterAll(() => {
    execFileSync('umount', [mount]);
  });

  it('fails cleanly, removes what it wrote, and keeps the previous backups', async () => {
    const home = newHome();
    const env = { BRAIN_HOME: home, BRAIN_BACKUP_PATH: mount };
    expect((await runBrain(['remember', 'small'], env)).code).toBe(0);
    const first = await backup(env);
    const kept = fs.readdirSync(mount).sort();
    expect(kept).toEqual([first.name, `${first.name}.sha256`]);

    // 1.2 MiB of random rows: the uncompressed copy fits, the compressed file beside it does not.
    padSqlite(home, 1.2);
    // Then 6 MiB: not even the copy fits.
    for (const grow of [0, 4.8]) {
      if (grow > 0) padSqlite(home, grow);
      const full = await runBrain(['backup'], env);
      expect(full.code).toBe(1);
      expect(full.stderr).toContain(`the backup directory ${mount} is full`);
      expect(full.stderr).toContain('the previous backups are kept');
      expect(full.stderr).not.toMatch(/\n\s+at /);
      expect(fs.readdirSync(mount).sort()).toEqual(kept);
      const listed = await listing(env);
      expect(listed.backups.map((b) => [b.name, b.checksum])).toEqual([[first.name, 'ok']]);
    }
  });

  it.skipIf(!postgresBaseUrl())(
    'fails cleanly on PostgreSQL too, with pg_dump stopped, not left hanging',
    async () => {
      for (const name of fs.readdirSync(mount)) fs.rmSync(path.join(mount, name));
      const home = newHome();
      const url = newPostgresDatabase('brain_backup_full');
      const env = { BRAIN_HOME: home, BRAIN_BACKUP_PATH: mount, BRAIN_DATABASE_URL: url };
      expect((await runBrain(['remember', 'small'], env)).code).toBe(0);
      const first = await backup(env);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      // About 7.5 MiB of random hex (four independent md5s a row): ~3.7 MiB once compressed, over the disk.
      await client.query(
        `CREATE TABLE zz_pad AS SELECT ${Array(4).fill('md5(random()::text)').join(' || ')} AS t FROM generate_series(1, 60000)`,
      );
      await client.end();
      const full = await runBrain(['backup'], env);
      expect(full.code).toBe(1);
      expect(full.stderr).toContain(`the backup directory ${mount} is full`);
      expect(fs.readdirSync(mount).sort()).toEqual([first.name, `${first.name}.sha256`]);
      const dumps = spawnSync('pgrep', ['-f', `pg_dump.*${url.split('/').pop()}`]);
      expect(dumps.stdout.toString().trim()).toBe('');
    },
  );
});

const pgSkip = !postgresBaseUrl();
describe.skipIf(pgSkip)(
  `restore faults (PostgreSQL)${pgSkip ? ` (skipped: ${postgresSkipReason()})` : ''}`,
  () => {
    it('kill -9 of brain in the middle of a restore rolls it all back', async () => {
      const home = newHome();
      const url = newPostgresDatabase('brain_backup_e2e');
      const env = { BRAIN_HOME: home, BRAIN_DATABASE_URL: url };
      expect((await runBrain(['remember', 'in the backup'], env)).code).toBe(0);
      const sql = async (text: string) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          return (await client.query(text)).rows;
        } finally {
          await client.end();
        }
      };
      // Enough rows that the restore's COPY runs for a while.
      await sql(
        "CREATE TABLE zz_pad AS SELECT g, md5(g::text) || repeat('x', 200) AS t FROM generate_series(1, 400000) g",
      );
      const taken = await backup(env);
      expect((await runBrain(['remember', 'after the backup'], env)).code).toBe(0);
      expect((await runBrain(['maintenance', 'on'], env)).code).toBe(0);

      const running = spawnBrain(['restore', taken.file, '--yes'], env);
      await waitFor(async () => {
        const rows = await sql(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = 'brain-backup' AND query ILIKE 'COPY%'",
        );
        return rows.length > 0 ? true : null;
      }, 'the restore to be copying rows');
      running.child.kill('SIGKILL');
      await running.exited;
      // psql sees its input end without COMMIT and leaves; the server rolls the transaction back.
      await waitFor(async () => {
        const rows = await sql("SELECT 1 FROM pg_stat_activity WHERE application_name = 'brain-backup'");
        return rows.length === 0 ? true : null;
      }, 'the restore session to end');
      expect(await contents(env)).toEqual(['after the backup', 'in the backup']);
      expect(await sql("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'brain_old_%'")).toEqual([]);
    });
  },
);
