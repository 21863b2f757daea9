import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runBrain, tempHome } from './brain-process.js';

const homes: string[] = [];
function home(): string {
  const dir = tempHome();
  homes.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

/** No user-facing output may carry a JavaScript stack trace. */
function expectNoStack(text: string): void {
  expect(text).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);
}

describe('brain CLI, as built', () => {
  it('prints the package version', async () => {
    const pkg = JSON.parse(
      fs.readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8'),
    ) as {
      version: string;
    };
    const result = await runBrain(['--version'], { BRAIN_HOME: home() });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it('remembers in one process and recalls in the next, under BRAIN_HOME', async () => {
    const env = { BRAIN_HOME: home() };
    const saved = await runBrain(
      ['remember', 'Our VPN gateway is vpn.example.org', '--tags', 'infra', '--json'],
      env,
    );
    expect(saved.code, saved.stderr).toBe(0);
    const { id } = JSON.parse(saved.stdout) as { id: string };
    expect(fs.existsSync(path.join(env.BRAIN_HOME, 'data', 'brain.db'))).toBe(true);

    const found = await runBrain(['recall', 'vpn gateway', '-k', '5', '--json'], env);
    expect(found.code, found.stderr).toBe(0);
    const result = JSON.parse(found.stdout) as { hits: { id: string; content: string }[] };
    expect(result.hits[0]).toMatchObject({ id, content: 'Our VPN gateway is vpn.example.org' });

    const human = await runBrain(['recall', 'vpn gateway'], env);
    expect(human.stdout).toContain('Our VPN gateway is vpn.example.org');

    const forgot = await runBrain(['forget', id], env);
    expect(forgot.code).toBe(0);
    const again = await runBrain(['get', id], env);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain(`not found: ${id}`);
  });

  it('recall reaches the cold tier with --include-cold and the past with --as-of; list shows cold with --include-cold', async () => {
    const env = { BRAIN_HOME: home() };
    const remember = async (text: string) =>
      (JSON.parse((await runBrain(['remember', text, '--json'], env)).stdout) as { id: string }).id;
    const first = await remember('The harbor ferry leaves at noon');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const then = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = await remember('The harbor ferry now leaves at one');
    const ids = async (args: string[]) => {
      const out = await runBrain([...args, '--json'], env);
      expect(out.code, out.stderr).toBe(0);
      const parsed = JSON.parse(out.stdout) as { hits?: { id: string }[]; items?: { id: string }[] };
      return (parsed.hits ?? parsed.items ?? []).map((h) => h.id).sort();
    };
    expect(await ids(['recall', 'harbor ferry'])).toEqual([first, second].sort());
    expect(await ids(['recall', 'harbor ferry', '--as-of', then])).toEqual([first]);
    // The first goes cold (as a rebalance would send it, written straight into the file here).
    const db = new Database(path.join(env.BRAIN_HOME, 'data', 'brain.db'));
    db.prepare("UPDATE memories SET storage_tier = 'cold' WHERE id = ?").run(first);
    db.close();
    expect(await ids(['recall', 'harbor ferry'])).toEqual([second]);
    expect(await ids(['recall', 'harbor ferry', '--include-cold'])).toEqual([first, second].sort());
    expect(await ids(['list'])).toEqual([second]);
    expect(await ids(['list', '--include-cold'])).toEqual([first, second].sort());
    const bad = await runBrain(['recall', 'harbor', '--as-of', 'yesterday'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/as_of/);
  });

  it('bad input exits 2 with the field and limit, and nothing is written', async () => {
    const env = { BRAIN_HOME: home() };
    const bad = await runBrain(['recall', 'x', '-k', '0'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/k: must be from 1 to 100/);
    expectNoStack(bad.stderr);
    const empty = await runBrain(['remember', ''], env);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/content: must not be empty/);
    const list = await runBrain(['list', '--json'], env);
    expect(JSON.parse(list.stdout)).toMatchObject({ total: 0 });
  });

  it('migrate applies the schema once, then reports it up to date', async () => {
    const env = { BRAIN_HOME: home() };
    const first = await runBrain(['migrate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/applied 1_memories/);
    expect(first.stdout).toMatch(/2_fts_insert_in_store/);
    const second = await runBrain(['migrate', '--json'], env);
    expect(JSON.parse(second.stdout)).toEqual({ applied: [], current: 17 });
  });

  it('config check prints the effective config and exits 0; any problem exits 1 naming it', async () => {
    const dir = home();
    const good = await runBrain(['config', 'check'], { BRAIN_HOME: dir });
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain('BRAIN_DB_PATH');
    expect(good.stdout).toContain(path.join(dir, 'data', 'brain.db'));

    const bad = await runBrain(['config', 'check'], {
      BRAIN_HOME: dir,
      BRAIN_PORT: 'abc',
      LOG_LEVEL: 'loud',
    });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/BRAIN_PORT/);
    expect(bad.stdout).toMatch(/LOG_LEVEL/);

    fs.writeFileSync(path.join(dir, 'brain.config.json'), JSON.stringify({ prot: 1 }));
    const typo = await runBrain(['config', 'check', '--json'], { BRAIN_HOME: dir }, dir);
    expect(typo.code).toBe(1);
    expect(typo.stdout).toMatch(/prot/);
  });

  it('a command with a bad setting refuses to start and says which', async () => {
    const result = await runBrain(['list'], { BRAIN_HOME: home(), BRAIN_CACHE_SIZE_MB: 'lots' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/BRAIN_CACHE_SIZE_MB/);
    expectNoStack(result.stderr);
  });

  it('a corrupt database file gives a clear startup error, not a stack trace', async () => {
    const dir = home();
    const dbPath = path.join(dir, 'corrupt.db');
    fs.writeFileSync(dbPath, 'this is not a sqlite database, just some text that is long enough'.repeat(100));
    for (const args of [['list'], ['mcp'], ['serve', '--port', '0']]) {
      const result = await runBrain(args, { BRAIN_HOME: dir, BRAIN_DB_PATH: dbPath });
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr).toMatch(/corrupt or not a SQLite database/);
      expectNoStack(result.stderr);
    }
  });

  it('a database locked past the busy timeout gives a clear error and writes nothing', async () => {
    const dir = home();
    const env = { BRAIN_HOME: dir, BRAIN_BUSY_TIMEOUT_MS: '300' };
    expect((await runBrain(['remember', 'first fact'], env)).code).toBe(0);
    // Another process's long write transaction, as a sqlite3 shell left open would hold it.
    const holder = new Database(path.join(dir, 'data', 'brain.db'));
    try {
      holder.exec('BEGIN EXCLUSIVE');
      holder.prepare('UPDATE memories SET importance = importance').run();
      for (const args of [['remember', 'second fact'], ['mcp'], ['serve', '--port', '0']]) {
        const result = await runBrain(args, env);
        expect(result.code, args.join(' ')).toBe(1);
        expect(result.stderr).toMatch(/locked by another process .*BRAIN_BUSY_TIMEOUT_MS/);
        expectNoStack(result.stderr);
      }
      // Its own code, and the advice to wait and retry.
      const json = await runBrain(['remember', 'third fact', '--json'], env);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stderr.trim().split('\n').at(-1) ?? '')).toMatchObject({
        error: { code: 'STORAGE_BUSY', message: expect.stringMatching(/wait a few seconds and retry/) },
      });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    const listed = await runBrain(['list', '--json'], env);
    expect(
      (JSON.parse(listed.stdout) as { items: { content: string }[] }).items.map((m) => m.content),
    ).toEqual(['first fact']);
  });

  it('an unwritable database path gives a clear startup error', async () => {
    const dir = home();
    const blocker = path.join(dir, 'not-a-dir');
    fs.writeFileSync(blocker, 'a file where a directory should be');
    const result = await runBrain(['remember', 'x'], {
      BRAIN_HOME: dir,
      BRAIN_DB_PATH: path.join(blocker, 'brain.db'),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot open database file .*brain\.db/);
    expectNoStack(result.stderr);
  });
  it('a bad setting a command does not use only warns it; brain serve and config check still fail', async () => {
    const env = { BRAIN_HOME: home(), BRAIN_PORT: 'abc' };
    const listed = await runBrain(['list', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ total: 0 });
    expect(listed.stderr).toMatch(
      /"level":40.*config: BRAIN_PORT: expected an integer .*not used by this command/,
    );
    const served = await runBrain(['serve'], env);
    expect(served.code).toBe(1);
    expect(served.stderr).toMatch(/BRAIN_PORT: expected an integer between 0 and 65535, got "abc"/);
    expectNoStack(served.stderr);
    const checked = await runBrain(['config', 'check'], env);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(/1 problem:\n {2}- BRAIN_PORT: .*it stops only brain serve/);
  });

  it('reads .env and brain.config.json from BRAIN_HOME or --env-file, never from the working directory', async () => {
    const project = home();
    fs.writeFileSync(path.join(project, '.env'), 'BRAIN_PORT=1111\nLOG_LEVEL=loud\n');
    fs.writeFileSync(path.join(project, 'brain.config.json'), JSON.stringify({ name: 'my-app' }));
    const brainHome = home();
    fs.writeFileSync(path.join(brainHome, '.env'), 'BRAIN_PORT=2222\n');
    fs.writeFileSync(path.join(brainHome, 'brain.config.json'), JSON.stringify({ dbPath: 'db/mine.db' }));
    const check = async (args: string[]) => {
      const result = await runBrain(
        ['config', 'check', '--json', ...args],
        { BRAIN_HOME: brainHome },
        project,
      );
      expect(result.code, result.stdout).toBe(0);
      return JSON.parse(result.stdout) as {
        settings: Record<string, { value: unknown; source: string }>;
        files: string[];
      };
    };
    const report = await check([]);
    expect(report.files).toEqual([path.join(brainHome, 'brain.config.json'), path.join(brainHome, '.env')]);
    expect(report.settings.port).toEqual({ env: 'BRAIN_PORT', value: 2222, source: '.env' });
    expect(report.settings.dbPath?.value).toBe(path.join(brainHome, 'db', 'mine.db'));
    fs.writeFileSync(path.join(project, 'other.env'), 'BRAIN_PORT=3333\n');
    expect((await check(['--env-file', 'other.env'])).settings.port?.value).toBe(3333);
  });
});
