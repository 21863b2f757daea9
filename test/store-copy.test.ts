import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyStore } from '../src/app/store-copy.js';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import { silentLogger } from '../src/core/logger.js';
import { runBrain } from './e2e/brain-process.js';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from './services/engines.js';
import { openTestBrain, type TestBrain } from './test-brain.js';

const open: TestBrain[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-copy-'));
  dirs.push(dir);
  return dir;
}

function config(home: string) {
  return requireValidConfig(loadConfig({ env: { BRAIN_HOME: home, LOG_LEVEL: 'silent' }, cwd: home }));
}

/** A SQLite store with what a copy must carry: vectors, a key, a session, a forgotten memory, a session row. */
async function filledSqlite(home: string): Promise<string[]> {
  const b = await openTestBrain('brain-copy-src-', { home, env: { BRAIN_DATABASE_URL: '' } });
  const m = b.brain.services.memory;
  const scope = b.brain.scope;
  const kept = await m.rememberMany(scope, [
    { content: 'The staging database listens on port 5433', tags: ['infra'] },
    { content: 'Alice prefers green tea', key: 'drink', type: 'preference', importance: 0.9 },
    { content: 'We chose PostgreSQL for the replicas', session: 'ses-1', project: 'brain' },
  ]);
  // Two versions: the key's earlier statement, and the state an update replaced (metadata included).
  await m.remember(scope, { content: 'Alice prefers jasmine tea now', key: 'drink', type: 'preference' });
  await m.update(scope, { id: kept[0]?.id, metadata: { owner: 'ops', b: 1, a: 2 } });
  const gone = await m.remember(scope, { content: 'a memory to forget' });
  await m.forget(scope, { id: gone.id });
  await b.brain.services.sessions.init(scope, { session_id: 'ses-1', project: 'brain' });
  await b.brain.close();
  return kept.map((k) => k.id);
}

describe.skipIf(!postgresBaseUrl())(
  `brain store copy${postgresBaseUrl() ? '' : ` (skipped: ${postgresSkipReason()})`}`,
  () => {
    it('moves a whole SQLite store to PostgreSQL and back, verified, and a second run changes nothing', async () => {
      const home = tempDir();
      const ids = await filledSqlite(home);
      const pgUrl = newPostgresDatabase();
      const base = config(home);
      const first = await copyStore(base, {
        from: `sqlite:${base.dbPath}`,
        to: pgUrl,
        cwd: home,
        logger: silentLogger,
      });
      expect(first.memories).toEqual({ source: 4, copied: 4, already: 0 });
      expect(first.sessions).toEqual({ source: 1, copied: 1, already: 0 });
      expect(first.versions).toEqual({ source: 2, copied: 2, already: 0 });
      expect(first.verified).toMatchObject({
        memories: 4,
        missing: 0,
        mismatched: 0,
        versions: 2,
        versions_missing: 0,
      });
      const again = await copyStore(base, {
        from: `sqlite:${base.dbPath}`,
        to: pgUrl,
        cwd: home,
        logger: silentLogger,
      });
      expect(again.memories).toEqual({ source: 4, copied: 0, already: 4 });
      expect(again.versions).toEqual({ source: 2, copied: 0, already: 2 });
      expect(again.verified.checksum).toBe(first.verified.checksum);

      // And back into a new SQLite file, through the CLI as a user runs it: the same memories, same checksum.
      const back = path.join(tempDir(), 'back.db');
      const cli = await runBrain(['store', 'copy', '--from', pgUrl, '--to', `sqlite:${back}`, '--json'], {
        BRAIN_HOME: home,
        LOG_LEVEL: 'silent',
      });
      expect(cli.stderr).not.toContain('Error:');
      expect(cli.code).toBe(0);
      const report = JSON.parse(cli.stdout) as {
        memories: { copied: number };
        versions: { copied: number };
        verified: { checksum: string };
      };
      expect(report.memories.copied).toBe(4);
      expect(report.versions.copied).toBe(2);
      expect(report.verified.checksum).toBe(first.verified.checksum);
      // A Brain on the copy recalls what the original held, with vectors, by key, and keeps the forget.
      const onPg = await openTestBrain('brain-copy-pg-', { env: { BRAIN_DATABASE_URL: pgUrl } });
      open.push(onPg);
      const recall = await onPg.brain.services.memory.recall(onPg.brain.scope, {
        query: 'staging database port',
      });
      expect(recall.hits[0]?.id).toBe(ids[0]);
      expect(recall.hits[0]?.signals.vector_similarity).not.toBeNull();
      expect((await onPg.brain.services.memory.list(onPg.brain.scope, {})).total).toBe(3);
      // Dedupe holds on the copy: a rewording of a copied memory reinforces it.
      const reworded = await onPg.brain.services.memory.remember(onPg.brain.scope, {
        content: 'On port 5433 the staging database listens.',
      });
      expect(reworded).toMatchObject({ id: ids[0], deduplicated: true });
      // The history came along: the key's earlier statement is the first version.
      const history = await onPg.brain.services.memory.history(onPg.brain.scope, { id: ids[1] });
      expect(history.versions.map((v) => [v.content, v.change])).toEqual([
        ['Alice prefers green tea', 'superseded'],
        ['Alice prefers jasmine tea now', null],
      ]);
      const init = await onPg.brain.services.sessions.init(onPg.brain.scope, {
        session_id: 'ses-1',
        project: 'brain',
      });
      expect(init.resumed).toBe(true);
    });
  },
);

describe('brain store copy between SQLite files', () => {
  it('copies and verifies more than one page, with rows only the destination has', async () => {
    const fromHome = tempDir();
    const toHome = tempDir();
    const src = await openTestBrain('brain-copy-pages-', { home: fromHome, env: { BRAIN_DATABASE_URL: '' } });
    const many = Array.from({ length: 1200 }, (_, i) => ({ content: `fact number ${i} about the fleet` }));
    for (let i = 0; i < many.length; i += 1000)
      await src.brain.services.memory.rememberMany(src.brain.scope, many.slice(i, i + 1000));
    await src.brain.close();
    const dst = await openTestBrain('brain-copy-dst-', { home: toHome, env: { BRAIN_DATABASE_URL: '' } });
    await dst.brain.services.memory.remember(dst.brain.scope, { content: 'only in the destination' });
    await dst.brain.close();
    const report = await copyStore(config(fromHome), {
      from: `sqlite:${config(fromHome).dbPath}`,
      to: `sqlite:${config(toHome).dbPath}`,
      cwd: fromHome,
      logger: silentLogger,
    });
    expect(report.memories).toEqual({ source: 1200, copied: 1200, already: 0 });
    expect(report.verified).toMatchObject({ memories: 1200, missing: 0, mismatched: 0 });
    // The copies are found as rewordings too, the last page's as the first's.
    const copy = await openTestBrain('brain-copy-dst-', { home: toHome, env: { BRAIN_DATABASE_URL: '' } });
    open.push(copy);
    for (const i of [0, 1199]) {
      const again = await copy.brain.services.memory.remember(copy.brain.scope, {
        content: `About the fleet: fact number ${i}`,
      });
      expect(again).toMatchObject({ status: 'duplicate', deduplicated: true });
    }
  });
});

describe('brain store copy, bad input', () => {
  it('names the field when a store is neither sqlite:PATH nor postgres://, and copies nothing', async () => {
    const home = tempDir();
    await expect(
      copyStore(config(home), { from: 'mysql://x/y', to: 'sqlite:b.db', cwd: home, logger: silentLogger }),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringContaining('store: expected sqlite:PATH'),
    });
    expect(fs.existsSync(path.join(home, 'b.db'))).toBe(false);
  });

  it('refuses to copy a store onto itself', async () => {
    const home = tempDir();
    await expect(
      copyStore(config(home), {
        from: 'sqlite:a.db',
        to: `sqlite:${path.join(home, 'a.db')}`,
        cwd: home,
        logger: silentLogger,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('--to') });
  });
});
