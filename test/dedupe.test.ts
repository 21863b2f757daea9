/**
 * Deduplication on write through the memory service: an exact repeat (same normalised content, same
 * project), a rewording (the same words from another end, other articles or edge punctuation) and, when
 * a threshold is set, a near-duplicate reinforce the memory they repeat and answer its id with
 * `deduplicated: true`; `dedupe: false`, keys, other projects and look-alike facts store anew.
 * The hash embedder stands in for a model here (deterministic); the engines' part is in the contract.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.js';
import { createFixedClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/logger.js';
import { createHashEmbedder } from '../src/modules/embeddings/hash-embedder.js';
import { createMemoryService } from '../src/modules/memory/memory-service.js';
import { openSqliteDatabase } from '../src/storage/sqlite/sqlite-database.js';
import { SqliteMemoryStore } from '../src/storage/sqlite/sqlite-memory-store.js';
import { migrateSqlite } from '../src/storage/sqlite/sqlite-migrations.js';
import { invalid, START, scope } from './memory-fixture.js';

const opened: (() => void)[] = [];
afterEach(() => {
  for (const close of opened.splice(0)) close();
});

/** A service on a fresh SQLite file with the hash embedder and, if given, a dedupe threshold. */
function setup(dedupeThreshold?: number, dedupeReworded?: boolean) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-dedupe-'));
  const db = openSqliteDatabase(path.join(dir, 'brain.db'), { busyTimeoutMs: 2000, cacheSizeMb: 8 });
  migrateSqlite(db);
  const store = new SqliteMemoryStore(db, silentLogger);
  const clock = createFixedClock(START);
  const service = createMemoryService({
    store,
    embedder: createHashEmbedder(256),
    clock,
    logger: silentLogger,
    ...(dedupeThreshold !== undefined ? { dedupeThreshold } : {}),
    ...(dedupeReworded !== undefined ? { dedupeReworded } : {}),
  });
  opened.push(() => {
    store.vectors.close();
    store.flushTouches();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { service, clock, count: () => service.list(scope, { limit: 1 }).then((r) => r.total) };
}

// Hash-embedder similarities: the paraphrase 0.92, the look-alike (another number) 0.72. The paraphrase
// has the fact's words in an order no rotation of them gives, so it is no rewording; the rewording is.
const FACT = 'Alice moved to Berlin in 2021.';
const PARAPHRASE = 'Alice moved in 2021 to Berlin.';
const REWORDING = 'In 2021, Alice moved to Berlin.';

describe('exact duplicates', () => {
  it('reinforce the memory they repeat: same id, access count, importance and updated_at', async () => {
    const { service, clock, count } = setup();
    const first = await service.remember(scope, { content: 'Water boils at 100 C', importance: 0.3 });
    expect(first).toEqual({ id: first.id, status: 'created', deduplicated: false });
    clock.advance(60_000);
    const again = await service.remember(scope, { content: '  water BOILS  at 100 c', importance: 0.9 });
    expect(again).toEqual({ id: first.id, status: 'duplicate', deduplicated: true });
    expect(await service.get(scope, { id: first.id })).toMatchObject({
      content: 'Water boils at 100 C',
      access_count: 1,
      importance: 0.9,
      updated_at: clock.now().toISOString(),
    });
    // dedupe: false does not store an exact copy twice: the content is the memory's identity.
    expect(await service.remember(scope, { content: 'Water boils at 100 C', dedupe: false })).toMatchObject({
      id: first.id,
      deduplicated: true,
    });
    expect(await count()).toBe(1);
  });

  it('are found within one batch: a later copy reinforces the first', async () => {
    const { service, count } = setup(0.9);
    const [a, b, c] = await service.rememberMany(scope, [
      { content: FACT },
      { content: FACT.toUpperCase() },
      { content: PARAPHRASE },
    ]);
    expect(a?.status).toBe('created');
    expect(b).toEqual({ id: a?.id, status: 'duplicate', deduplicated: true });
    // Near-duplicates are looked for among stored memories only, not the batch's own.
    expect(c).toMatchObject({ status: 'created', deduplicated: false });
    expect(await count()).toBe(2);
  });
});

describe('rewordings', () => {
  it('reinforce the memory whose words they tell from another end, by default and within a batch', async () => {
    const { service, count } = setup();
    const first = await service.remember(scope, { content: FACT, importance: 0.3 });
    expect(await service.remember(scope, { content: REWORDING, importance: 0.8 })).toEqual({
      id: first.id,
      status: 'duplicate',
      deduplicated: true,
    });
    expect(await service.get(scope, { id: first.id })).toMatchObject({
      content: FACT,
      access_count: 1,
      importance: 0.8,
    });
    const [a, b] = await service.rememberMany(scope, [
      { content: 'The office is closed on public holidays.' },
      { content: 'On public holidays the office is closed' },
    ]);
    expect(b).toEqual({ id: a?.id, status: 'duplicate', deduplicated: true });
    expect(await count()).toBe(2);
  });

  it('are stored anew with dedupe: false, a key, a supersession, or BRAIN_DEDUPE_REWORDED off', async () => {
    const { service, count } = setup();
    const first = await service.remember(scope, { content: FACT });
    const apart = [
      { content: REWORDING, dedupe: false },
      { content: REWORDING, key: 'move' },
      { content: 'Berlin in 2021 Alice moved to', supersedes: first.id },
    ];
    for (const input of apart)
      expect(await service.remember(scope, input)).toMatchObject({ status: 'created', deduplicated: false });
    expect(await count()).toBe(4);
    const off = setup(undefined, false);
    await off.service.remember(scope, { content: FACT });
    expect(await off.service.remember(scope, { content: REWORDING })).toMatchObject({ status: 'created' });
    expect(await off.count()).toBe(2);
    const exact = await off.service.remember(scope, { content: FACT.toLowerCase() });
    expect(exact).toMatchObject({ status: 'duplicate', deduplicated: true });
  });
});

describe('near-duplicates', () => {
  it('merge into the nearest memory at the threshold', async () => {
    const { service, count } = setup(0.9);
    const first = await service.remember(scope, { content: FACT, project: 'p' });
    const near = await service.remember(scope, { content: PARAPHRASE, project: 'p' });
    expect(near).toMatchObject({ id: first.id, status: 'duplicate', deduplicated: true });
    expect(await service.get(scope, { id: first.id })).toMatchObject({ content: FACT, access_count: 1 });
    expect(await count()).toBe(1);
  });

  it('are stored anew with dedupe: false, in another project, or below the threshold', async () => {
    const { service, count } = setup(0.9);
    await service.remember(scope, { content: FACT, project: 'p' });
    const kept = await service.remember(scope, { content: PARAPHRASE, project: 'p', dedupe: false });
    expect(kept).toMatchObject({ status: 'created', deduplicated: false });
    expect((await service.remember(scope, { content: PARAPHRASE, project: 'q' })).status).toBe('created');
    expect((await service.remember(scope, { content: PARAPHRASE })).status).toBe('created');
    // A look-alike with another number is another fact.
    await service.remember(scope, { content: 'The server has 64 GB of RAM.' });
    const other = await service.remember(scope, { content: 'The server has 128 GB of RAM.' });
    expect(other).toMatchObject({ status: 'created', deduplicated: false });
    expect(await count()).toBe(6);
  });

  it('never merge a keyed write, nor into a keyed memory', async () => {
    const { service, count } = setup(0.9);
    await service.remember(scope, { content: FACT, key: 'move' });
    expect((await service.remember(scope, { content: PARAPHRASE })).status).toBe('created');
    expect((await service.remember(scope, { content: `${PARAPHRASE} `, key: 'move-2' })).status).toBe(
      'created',
    );
    expect(await count()).toBe(3);
  });

  it('are off by default for a provider whose measured threshold is none (hash)', async () => {
    const { service, count } = setup();
    await service.remember(scope, { content: FACT });
    expect((await service.remember(scope, { content: PARAPHRASE })).status).toBe('created');
    expect(await count()).toBe(2);
  });
});

describe('bad input', () => {
  it('refuses a dedupe that is not a boolean, naming the field', async () => {
    const { service } = setup();
    expect(await invalid(service.remember(scope, { content: FACT, dedupe: 'no' }))).toMatch(/dedupe/);
    expect(
      await invalid(service.rememberMany(scope, [{ content: FACT }, { content: FACT, dedupe: 1 }])),
    ).toMatch(/1\.dedupe/);
  });

  it('refuses a BRAIN_DEDUPE_REWORDED that is not a boolean, naming the setting', () => {
    const { problems } = loadConfig({ env: { BRAIN_DEDUPE_REWORDED: 'sometimes' }, cwd: os.tmpdir() });
    expect(problems.map((p) => p.setting)).toContain('BRAIN_DEDUPE_REWORDED');
    expect(loadConfig({ env: {}, cwd: os.tmpdir() }).config.dedupeReworded).toBe(true);
    expect(
      loadConfig({ env: { BRAIN_DEDUPE_REWORDED: 'false' }, cwd: os.tmpdir() }).config.dedupeReworded,
    ).toBe(false);
  });

  it('refuses a BRAIN_DEDUPE_THRESHOLD outside 0..1 or not a number, naming the setting', () => {
    for (const value of ['1.5', '-0.1', 'high']) {
      const { problems } = loadConfig({ env: { BRAIN_DEDUPE_THRESHOLD: value }, cwd: os.tmpdir() });
      expect(problems.map((p) => p.setting)).toContain('BRAIN_DEDUPE_THRESHOLD');
    }
    const ok = loadConfig({ env: { BRAIN_DEDUPE_THRESHOLD: '0.97' }, cwd: os.tmpdir() });
    expect(ok.config.dedupeThreshold).toBe(0.97);
  });
});
