import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBrain } from '../../src/app/build-brain.js';
import { loadConfig, requireValidConfig } from '../../src/config/load-config.js';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../services/engines.js';
import { brainEnv, runBrain, startServe, tempHome } from './brain-process.js';

const homes: string[] = [];
afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

function newHome(): string {
  const dir = tempHome('brain-db-e2e-');
  homes.push(dir);
  return dir;
}

const dbOf = (home: string) => path.join(home, 'data', 'brain.db');

/** A home whose database holds `n` memories of a few hundred bytes each, written in process by a real Brain. */
async function filledHome(n: number, env: Record<string, string> = {}): Promise<Record<string, string>> {
  const home = newHome();
  const all = { BRAIN_HOME: home, ...env };
  const config = requireValidConfig(loadConfig({ env: brainEnv(all), cwd: home }));
  const brain = await buildBrain(config, { logger: pino({ level: 'silent' }) });
  try {
    for (let i = 0; i < n; i++)
      await brain.services.memory.remember(brain.scope, {
        content: `fact ${i} about the garden ${'padding words '.repeat(25)}`,
      });
  } finally {
    await brain.close();
  }
  return all;
}

/** Garbage over the `index`-th leaf page of the memories table (found through SQLite's own page map). */
function damageLeaf(file: string, index = 1): void {
  const db = new Database(file, { readonly: true });
  const page = db
    .prepare(
      "SELECT pageno FROM dbstat WHERE name = 'memories' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET ?",
    )
    .pluck()
    .get(index) as number;
  const size = Number(db.pragma('page_size', { simple: true }));
  db.close();
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(size, 0xa7), 0, size, (page - 1) * size);
  fs.closeSync(fd);
}

/** The lines a person sees: never a stack frame. */
function expectNoStack(text: string): void {
  expect(text).not.toMatch(/^\s+at /m);
  expect(text).not.toContain('"stack"');
}

describe('a damaged database at start', () => {
  it('a garbage page in the middle: serve, mcp and one-shot commands exit 1 naming the file and brain db recover; recover brings the rest back', async () => {
    const env = await filledHome(40);
    damageLeaf(dbOf(env.BRAIN_HOME as string));
    const advice = new RegExp(
      `database file ${dbOf(env.BRAIN_HOME as string).replaceAll('.', '\\.')} is damaged .*run \`brain db recover\``,
    );

    for (const args of [['serve', '--port', '0'], ['mcp']]) {
      const started = await runBrain(args, env);
      expect(started.code, args[0]).toBe(1);
      expect(started.stderr.trim().split('\n'), args[0]).toHaveLength(1);
      expect(started.stderr).toMatch(advice);
      expectNoStack(started.stderr + started.stdout);
    }
    const listed = await runBrain(['list'], env);
    expect(listed.code).toBe(1);
    expect(listed.stderr).toMatch(
      /^error: database file .*brain\.db is corrupt or not a SQLite database: stop Brain, then run `brain db recover`/m,
    );
    expectNoStack(listed.stderr);

    const checked = await runBrain(['db', 'check'], env);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(/^✗ integrity_check: .*fix: brain db recover/m);

    const recovered = await runBrain(['db', 'recover', '--json'], env);
    expect(recovered.code, recovered.stderr).toBe(0);
    const report = JSON.parse(recovered.stdout) as { keptAside: string; tables: { memories: number } };
    expect(fs.existsSync(report.keptAside)).toBe(true);
    expect(report.tables.memories).toBeGreaterThan(20);
    expect(report.tables.memories).toBeLessThan(40);

    const after = await runBrain(['list', '--json', '--limit', '100'], env);
    expect(after.code, after.stderr).toBe(0);
    expect((JSON.parse(after.stdout) as { total: number }).total).toBe(report.tables.memories);
    expect((await runBrain(['db', 'check'], env)).code).toBe(0);
    const recall = await runBrain(['recall', 'garden', '--json'], env);
    expect((JSON.parse(recall.stdout) as { hits: unknown[] }).hits.length).toBeGreaterThan(0);
  });

  it('a file whose header is garbage: serve, mcp and status exit 1 with the advice; recover rebuilds it', async () => {
    const env = await filledHome(10);
    const fd = fs.openSync(dbOf(env.BRAIN_HOME as string), 'r+');
    fs.writeSync(fd, Buffer.alloc(100, 0x42), 0, 100, 0);
    fs.closeSync(fd);
    for (const args of [['serve', '--port', '0'], ['mcp'], ['status']]) {
      const started = await runBrain(args, env);
      expect(started.code, args[0]).toBe(1);
      expect(started.stderr, args[0]).toMatch(
        /corrupt or not a SQLite database: stop Brain, then run `brain db recover`/,
      );
      expect(started.stderr.trim().split('\n'), args[0]).toHaveLength(1);
    }
    const recovered = await runBrain(['db', 'recover'], env);
    expect(recovered.code, recovered.stderr).toBe(0);
    expect(recovered.stdout).toMatch(/memories 10/);
    expect((await runBrain(['status'], env)).code).toBe(0);
  });

  it('brain db recover refuses while brain serve holds the database, and changes nothing', async () => {
    const env = await filledHome(3);
    const server = await startServe(env);
    try {
      const refused = await runBrain(['db', 'recover', '--force'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/is open in another process .*stop every process using it/);
      expect(
        fs
          .readdirSync(path.dirname(dbOf(env.BRAIN_HOME as string)))
          .filter((n) => n.startsWith('brain_corrupt')),
      ).toEqual([]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});

describe('brain doctor', () => {
  it('exits 1 on a ✗ (no backup yet, a world-readable home) with the fix, 0 once fixed; a running Brain on the port is not a fault', async () => {
    const env = await filledHome(1);
    const home = env.BRAIN_HOME as string;
    const fresh = await runBrain(['doctor'], env);
    expect(fresh.code).toBe(1);
    expect(fresh.stdout).toMatch(/^✗ backups: +no good backup in .* — fix: brain backup/m);
    expect(fresh.stdout).toMatch(/^✓ config: /m);
    expect(fresh.stdout).toMatch(/^✓ migrations: +schema version \d+, current/m);
    expect(fresh.stdout).toMatch(/^✓ disk: /m);

    expect((await runBrain(['backup'], env)).code).toBe(0);
    const healthy = await runBrain(['doctor', '--json'], env);
    expect(healthy.code, healthy.stdout).toBe(0);
    const report = JSON.parse(healthy.stdout) as { ok: boolean; checks: { name: string; status: string }[] };
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'config',
        'database',
        'integrity',
        'migrations',
        'disk',
        'embedder',
        'backups',
        'port',
        'permissions',
      ]),
    );

    fs.chmodSync(home, 0o755);
    const open = await runBrain(['doctor'], env);
    expect(open.code).toBe(1);
    expect(open.stdout).toMatch(new RegExp(`^✗ permissions: .*mode 755.* — fix: chmod 700 ${home}`, 'm'));
    fs.chmodSync(home, 0o700);

    const server = await startServe(env);
    try {
      const port = new URL(server.url).port;
      const busy = await runBrain(['doctor'], { ...env, BRAIN_PORT: port });
      expect(busy.stdout).toMatch(
        new RegExp(`^✓ port: +127\\.0\\.0\\.1:${port} is in use by a running Brain`, 'm'),
      );
      expect(busy.code, busy.stdout).toBe(0);
    } finally {
      await server.stop();
    }
    // Another program on the port is a fault.
    const other = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => other.once('listening', resolve));
    try {
      const port = String((other.address() as net.AddressInfo).port);
      const taken = await runBrain(['doctor'], { ...env, BRAIN_PORT: port });
      expect(taken.code).toBe(1);
      expect(taken.stdout).toMatch(
        /^✗ port: .*in use by another program — fix: stop that program, or set BRAIN_PORT/m,
      );
    } finally {
      other.close();
    }
  });

  it('a bad setting is its own ✗ line, not a refusal to run', async () => {
    const env = await filledHome(1, {});
    const result = await runBrain(['doctor'], { ...env, BRAIN_CACHE_SIZE_MB: 'lots' });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^✗ config: +1 problem\(s\): .*BRAIN_CACHE_SIZE_MB.* — fix: brain config check/m,
    );
    expect(result.stdout).toMatch(/^✓ database: /m);
  });
});

describe('brain report daily', () => {
  it('counts memories by type and tier, the errors logged in the last 24 h, and sees a running server', async () => {
    const logs = newHome();
    const env = await filledHome(3, { BRAIN_LOG_PATH: logs });
    expect((await runBrain(['remember', 'prefers tea', '--type', 'preference'], env)).code).toBe(0);
    // An error in the log: a failed one-shot command on a damaged copy logs at level 50 to error.log.
    fs.writeFileSync(
      path.join(logs, 'error.log'),
      `${JSON.stringify({ level: 50, time: Date.now() - 3_600_000, msg: 'storage failed: test' })}\n${JSON.stringify({ level: 50, time: Date.now() - 3 * 86_400_000, msg: 'too old' })}\n`,
    );
    const server = await startServe(env);
    try {
      const report = await runBrain(['report', 'daily', '--json'], {
        ...env,
        BRAIN_PORT: new URL(server.url).port,
      });
      expect(report.code, report.stderr).toBe(0);
      expect(JSON.parse(report.stdout)).toMatchObject({
        service: { running: true, status: 'ok' },
        database: { engine: 'sqlite' },
        memories: { live: 4, by_type: { fact: 3, preference: 1 }, by_tier: { hot: 4 } },
        errors: {
          log: { count: 1, last: expect.stringMatching(/storage failed: test/) },
          audit: { failed: 0 },
        },
      });
      const text = await runBrain(['report', 'daily'], env);
      expect(text.stdout).toMatch(/^memories: +4 \(0 forgotten\)$/m);
      expect(text.stdout).toMatch(/^ {2}by type: +fact 3, preference 1$/m);
    } finally {
      await server.stop();
    }
  });
});

describe.skipIf(!postgresBaseUrl())(
  `brain db on PostgreSQL${postgresBaseUrl() ? '' : ` (skipped: ${postgresSkipReason()})`}`,
  () => {
    it('check passes, reindex runs, and recover is refused with what to do instead', async () => {
      const env = { BRAIN_HOME: newHome(), BRAIN_DATABASE_URL: newPostgresDatabase() };
      expect((await runBrain(['remember', 'the lake is cold'], env)).code).toBe(0);
      const checked = await runBrain(['db', 'check'], env);
      expect(checked.code, checked.stdout).toBe(0);
      expect(checked.stdout).toMatch(
        /^– amcheck: .*not run — fix: as a superuser: CREATE EXTENSION amcheck/m,
      );
      expect((await runBrain(['db', 'reindex'], env)).code).toBe(0);
      expect((await runBrain(['db', 'vacuum'], env)).code).toBe(0);
      const recover = await runBrain(['db', 'recover'], env);
      expect(recover.code).toBe(2);
      expect(recover.stderr).toMatch(
        /brain db recover repairs the SQLite file; on PostgreSQL restore the newest backup \(brain restore FILE\)/,
      );
      const report = await runBrain(['report', 'daily', '--json'], env);
      expect(JSON.parse(report.stdout)).toMatchObject({
        database: { engine: 'postgres' },
        memories: { live: 1 },
      });
    });
  },
);
