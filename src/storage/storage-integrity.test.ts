import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/services/engines.js';
import { PgDatabases } from '../../test/services/pg-store-fixture.js';
import { engineSkipReason, openStorage, type StorageHarness } from '../../test/services/storage-harness.js';
import { createHashEmbedder } from '../modules/embeddings/hash-embedder.js';
import { newMemoryRow } from './contract/memory-store-contract.js';
import type { IntegrityReport } from './storage-integrity.js';

const scope = { tenantId: 't' };
const embedder = createHashEmbedder(32);
const harnesses: StorageHarness[] = [];
const databases = new PgDatabases();
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
  await databases.closeAll();
});

async function seeded(engine: 'sqlite' | 'postgres'): Promise<StorageHarness> {
  const harness = await openStorage(engine);
  harnesses.push(harness);
  const contents = Array.from(
    { length: 40 },
    (_, i) => `note ${i} about the ${i % 2 ? 'lake' : 'garden'} shed`,
  );
  const rows = await Promise.all(
    contents.map(async (content, i) => {
      const [embedding] = await embedder.embed([content]);
      return newMemoryRow(content, {
        tags: [`t${i % 3}`],
        session: i % 3 === 0 ? 'conversation' : null,
        embedding: embedding ?? null,
        embedding_model: embedder.model,
      });
    }),
  );
  await harness.storage.stores().memories.insert(scope, rows);
  await harness.storage
    .stores()
    .memories.forget(scope, { id: rows[5]?.id as string }, { hard: false, now: '2026-06-01T12:00:00.000Z' });
  await harness.storage
    .stores()
    .memories.forget(scope, { id: rows[6]?.id as string }, { hard: true, now: '2026-06-01T12:00:00.000Z' });
  return harness;
}

/** The ids text search finds for "garden" (in the memories' own text or their session context). */
async function gardenHits(harness: StorageHarness): Promise<string[]> {
  const found = await harness.storage.stores().memories.candidates(scope, {
    text: 'garden',
    embedding: null,
    embedding_model: null,
    filter: {},
    limit: 50,
    now: '2026-06-01T12:00:00.000Z',
  });
  return found.text.map((t) => t.id).sort();
}

const failing = (report: IntegrityReport) =>
  report.checks
    .filter((c) => c.status === 'fail')
    .map((c) => c.name)
    .sort();

/** Runs SQL straight on the harness's store, past Brain: the drift a bug, a crash or a hand edit leaves. */
async function tamper(harness: StorageHarness, sql: string[]): Promise<void> {
  if (harness.storage.engine === 'sqlite') {
    const db = new Database(harness.storage.location);
    try {
      db.pragma('foreign_keys = OFF');
      for (const s of sql) db.exec(s);
    } finally {
      db.close();
    }
    return;
  }
  const db = databases.open(harness.env.BRAIN_DATABASE_URL as string);
  for (const s of sql) await db.query(s, [], db.primary);
}

/** Per engine: drift in the text index, its statistics, the tokens and the vectors, and the checks that must see it. */
const DRIFT = {
  sqlite: {
    sql: [
      'DELETE FROM memories_fts WHERE rowid = (SELECT min(rid) FROM memories WHERE deleted_at IS NULL)',
      'UPDATE search_stats SET documents = documents + 1',
      "UPDATE memories SET search_text = 'stale words' WHERE rid = (SELECT max(rid) FROM memories WHERE deleted_at IS NULL)",
      "INSERT INTO memory_embeddings (rid, model, embedding) VALUES (999999, 'hash', x'0102')",
    ],
    caught: ['foreign_keys', 'text_index', 'text_statistics', 'text_tokens', 'vectors'],
  },
  postgres: {
    sql: [
      "INSERT INTO memory_terms (tenant_id, term, docs) VALUES ('t', 'garden', 3)",
      "UPDATE memories SET search_text = 'stale words' WHERE rid = (SELECT max(rid) FROM memories WHERE deleted_at IS NULL)",
      'UPDATE memory_embeddings SET dims = dims + 1 WHERE rid = (SELECT min(rid) FROM memory_embeddings)',
    ],
    caught: ['text_statistics', 'text_tokens', 'vectors'],
  },
} as const;

for (const engine of ENGINES) {
  const skip = engineSkipReason(engine);
  describe.skipIf(skip !== null)(
    `db check, reindex and upkeep on ${engine}${skip ? ` (skipped: ${skip})` : ''}`,
    () => {
      it('a store Brain wrote passes every check', async () => {
        const { storage } = await seeded(engine);
        const report = await storage.integrity().check();
        expect(failing(report)).toEqual([]);
        expect(report.ok).toBe(true);
        expect(report.checks.map((c) => c.name)).toEqual(
          engine === 'sqlite'
            ? [
                'integrity_check',
                'foreign_keys',
                'text_index',
                'text_tokens',
                'text_statistics',
                'vectors',
                'vector_snapshots',
              ]
            : ['amcheck', 'foreign_keys', 'text_index', 'text_tokens', 'text_statistics', 'vectors'],
        );
      });

      it('finds drift in the text index, its statistics, the tokens and the vectors; reindex repairs it, twice changes nothing', async () => {
        const harness = await seeded(engine);
        const before = await gardenHits(harness);
        expect(before.length).toBeGreaterThan(19);
        await tamper(harness, [...DRIFT[engine].sql]);
        const integrity = harness.storage.integrity();
        const broken = await integrity.check();
        expect(broken.ok).toBe(false);
        expect(failing(broken)).toEqual([...DRIFT[engine].caught]);
        for (const c of broken.checks.filter((c) => c.status === 'fail'))
          expect(c.fix).toMatch(/brain db reindex/);

        const progress: [number, number][] = [];
        const version = () => harness.storage.stores().memories.changeVersion(scope);
        const cachedAt = await version();
        const first = await integrity.reindex((done, total) => progress.push([done, total]));
        // PostgreSQL: a new change token, so no replica's recall cache serves an answer from before.
        if (engine === 'postgres') expect(await version()).not.toBe(cachedAt);
        expect(first.memories).toBe(38);
        expect(first.removedOrphans).toBe(1);
        expect(progress.at(-1)).toEqual([38, 38]);
        expect(failing(await integrity.check())).toEqual([]);

        const second = await integrity.reindex();
        expect({ ...second, seconds: 0 }).toEqual({ ...first, removedOrphans: 0, seconds: 0 });
        expect(failing(await integrity.check())).toEqual([]);
        // Search finds what it found before the drift: the rebuilt index serves recall.
        expect(await gardenHits(harness)).toEqual(before);
      });

      it('vacuum, analyze and checkpoint run and say what they did', async () => {
        const { storage } = await seeded(engine);
        const integrity = storage.integrity();
        const vacuum = await integrity.vacuum();
        expect(vacuum).toMatchObject({
          ran: true,
          operation: engine === 'sqlite' ? 'vacuum' : 'vacuum-analyze',
        });
        expect(vacuum.bytesAfter).toBeGreaterThan(0);
        expect((await integrity.analyze()).ran).toBe(true);
        const checkpoint = await integrity.checkpoint();
        expect(checkpoint.ran).toBe(true);
        expect(checkpoint.message).toMatch(
          engine === 'sqlite' ? /WAL pages and truncated the WAL/ : /CHECKPOINT done/,
        );
        // The store still answers after its upkeep.
        expect(failing(await integrity.check())).toEqual([]);
      });
    },
  );
}

describe.skipIf(engineSkipReason('sqlite') !== null)('SQLite specifics', () => {
  it('a checkpoint empties the WAL a write left', async () => {
    const { storage } = await seeded('sqlite');
    expect(fs.statSync(`${storage.location}-wal`).size).toBeGreaterThan(0);
    const result = await storage.integrity().checkpoint();
    expect(result.busy).toBe(false);
    expect(result.checkpointedPages).toBe(result.logPages);
    expect(fs.statSync(`${storage.location}-wal`).size).toBe(0);
  });

  it('a saved vector index of another database or ahead of the rows fails, one behind is stale, reindex removes them', async () => {
    const harness = await seeded('sqlite');
    const dir = `${harness.storage.location}.vectors`;
    fs.mkdirSync(dir, { recursive: true });
    const db = new Database(harness.storage.location, { readonly: true });
    const instanceId = db.prepare("SELECT value FROM brain_meta WHERE key = 'instance_id'").pluck().get();
    const seq = db
      .prepare("SELECT max(change_seq) FROM memories WHERE tenant_id = 't'")
      .pluck()
      .get() as number;
    db.close();
    const save = (name: string, meta: object) => {
      const index = Buffer.from(`index ${name}`);
      fs.writeFileSync(path.join(dir, `${name}.usearch`), index);
      const sha256 = createHash('sha256').update(index).digest('hex');
      fs.writeFileSync(
        path.join(dir, `${name}.json`),
        JSON.stringify({ tenantId: 't', model: 'm', sha256, ...meta }),
      );
    };
    save('behind', { instanceId, seq: seq - 1 });
    const stale = await harness.storage.integrity().check();
    expect(stale.checks.find((c) => c.name === 'vector_snapshots')).toMatchObject({ status: 'warn' });
    expect(stale.ok).toBe(true);
    save('ahead', { instanceId, seq: seq + 5 });
    save('foreign', { instanceId: 'another', seq });
    const bad = await harness.storage.integrity().check();
    expect(bad.checks.find((c) => c.name === 'vector_snapshots')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/3 saved .*ahead of the rows.*another database/),
    });
    const result = await harness.storage.integrity().reindex();
    expect(result.removedIndexFiles).toBe(3);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(
      (await harness.storage.integrity().check()).checks.find((c) => c.name === 'vector_snapshots')?.status,
    ).toBe('ok');
  });
});

describe.skipIf(engineSkipReason('postgres') !== null)('PostgreSQL specifics', () => {
  it('amcheck runs once installed (skipped, with the command, before)', async () => {
    const harness = await seeded('postgres');
    const before = await harness.storage.integrity().check();
    expect(before.checks[0]).toMatchObject({
      name: 'amcheck',
      status: 'skipped',
      fix: expect.stringMatching(/CREATE EXTENSION amcheck/),
    });
    await tamper(harness, ['CREATE EXTENSION amcheck']);
    const after = await harness.storage.integrity().check();
    expect(after.checks[0]).toMatchObject({
      name: 'amcheck',
      status: 'ok',
      message: expect.stringMatching(/b-tree indexes/),
    });
  });

  it('CHECKPOINT by a role that may not: a clear refusal, not an error', async () => {
    const harness = await seeded('postgres');
    const url = new URL(harness.env.BRAIN_DATABASE_URL as string);
    const role = `plain_${Math.random().toString(36).slice(2, 8)}`;
    await tamper(harness, [`CREATE ROLE ${role} LOGIN`]);
    url.username = role;
    const plain = await openStorage('postgres', {
      env: { ...harness.env, BRAIN_DATABASE_URL: url.toString() },
      migrate: false,
    });
    harnesses.push(plain);
    const result = await plain.storage.integrity().checkpoint();
    expect(result).toMatchObject({
      ran: false,
      message: expect.stringMatching(/CHECKPOINT needs a superuser .*checkpoints by itself/),
    });
  });
});
