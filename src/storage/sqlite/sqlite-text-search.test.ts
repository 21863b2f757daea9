import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newId } from '../../core/ids.js';
import { silentLogger } from '../../core/logger.js';
import type { NewMemory } from '../../modules/memory/memory-store.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import { openSqliteDatabase, type SqliteDatabase } from './sqlite-database.js';
import { sqliteIntegrity } from './sqlite-integrity.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite, SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import { ownSearchText } from './sqlite-search-text.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function openDb(): { db: SqliteDatabase; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-text-'));
  dirs.push(dir);
  const file = path.join(dir, 'brain.db');
  return { db: openSqliteDatabase(file, { busyTimeoutMs: 1000, cacheSizeMb: 8 }), file };
}

/** A database at schema `version` (no rows), as a build of that version left it. */
function openAt(version: number): { db: SqliteDatabase; file: string } {
  const opened = openDb();
  opened.db.exec(
    'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  for (const m of SQLITE_MIGRATIONS.filter((m) => m.version <= version)) {
    opened.db.exec(m.sql);
    opened.db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, NOW);
  }
  return opened;
}

function openStore() {
  const { db } = openDb();
  migrateSqlite(db);
  return { db, store: new SqliteMemoryStore(db, silentLogger) };
}

const NOW = '2026-06-01T12:00:00.000Z';
const row = (content: string, extra: Partial<NewMemory> = {}) =>
  newMemoryRow(content, { id: newId('mem'), embedding: null, embedding_model: null, ...extra });

async function textHits(store: SqliteMemoryStore, tenantId: string, text: string) {
  const found = await store.candidates(
    { tenantId },
    { text, embedding: null, embedding_model: null, filter: {}, limit: 10, now: NOW },
  );
  return found.text.map((h) => ({ content: found.memories.get(h.id)?.content, bm25: h.score }));
}

describe('full-text search', () => {
  it("scores with the tenant's own statistics: another tenant's memories change no score", async () => {
    const { db, store } = openStore();
    await store.insert({ tenantId: 'a' }, [
      row('the garden has tomatoes'),
      row('the shed has a ladder'),
      row('a quiet afternoon'),
    ]);
    const before = await textHits(store, 'a', 'tomatoes in the garden');
    // Tenant b fills the index with the same words, which would lower their IDF in a global index.
    await store.insert(
      { tenantId: 'b' },
      Array.from({ length: 200 }, (_, i) => row(`garden tomatoes report ${i}`)),
    );
    const fresh = new SqliteMemoryStore(db, silentLogger); // no cached statistics
    const after = await textHits(fresh, 'a', 'tomatoes in the garden');
    expect(before[0]?.content).toBe('the garden has tomatoes');
    expect(after).toEqual(before);
    db.close();
  });

  it("picks terms and candidates from the tenant's own rows, however many of another tenant's match", async () => {
    const { db, store } = openStore();
    // More matches of the query's words than the short list holds, in different mixes and lengths.
    const words = ['harbor lantern festival', 'harbor boats at night', 'lantern repair shop', 'the festival'];
    await store.insert(
      { tenantId: 'a' },
      Array.from({ length: 160 }, (_, i) => row(`${words[i % 4]} ${'note '.repeat(i % 7)}${i}`)),
    );
    const before = await textHits(store, 'a', 'harbor lantern festival');
    // Tenant b takes every word past the match budget (1,000 documents), with short documents that the
    // index's own BM25 would rank first.
    await store.insert(
      { tenantId: 'b' },
      Array.from({ length: 1_100 }, (_, i) => row(`harbor lantern festival ${i}`)),
    );
    const fresh = new SqliteMemoryStore(db, silentLogger); // no cached statistics
    const after = await textHits(fresh, 'a', 'harbor lantern festival');
    expect(before).toHaveLength(10);
    expect(before[0]?.content).toMatch(/^harbor lantern festival/);
    expect(after).toEqual(before);
    db.close();
  });

  it('matches stemmed forms: "painting" finds "painted", "paints"', async () => {
    const { db, store } = openStore();
    await store.insert({ tenantId: 't' }, [row('She painted a sunrise last year'), row('He fixed the bike')]);
    const hits = await textHits(store, 't', 'painting');
    expect(hits.map((h) => h.content)).toEqual(['She painted a sunrise last year']);
    db.close();
  });

  it("finds a memory by its session neighbours' words, ranked below one holding the words itself", async () => {
    const { db, store } = openStore();
    await store.insert({ tenantId: 't' }, [
      row('Alice: what did you think of the pottery class?', { session: 's1' }),
      row('Bob: I loved it, I made a bowl', { session: 's1' }),
      row('Alice: nice, see you tomorrow', { session: 's1' }),
      row('Carol: I bought new shoes', { session: 's2' }),
    ]);
    const hits = await textHits(store, 't', 'pottery class');
    expect(hits[0]?.content).toBe('Alice: what did you think of the pottery class?');
    // The answer after the question is found through its context; the unrelated session is not.
    expect(hits.map((h) => h.content)).toContain('Bob: I loved it, I made a bowl');
    expect(hits.map((h) => h.content)).not.toContain('Carol: I bought new shoes');
    // A memory two turns away is not a neighbour.
    expect(hits.map((h) => h.content)).not.toContain('Alice: nice, see you tomorrow');
    db.close();
  });

  it('links neighbours across separate writes, and a hard forget purges the words from them', async () => {
    const { db, store } = openStore();
    const [first] = await store.insert({ tenantId: 't' }, [
      row('Dana: my cat is named Pickles', { session: 's' }),
    ]);
    await store.insert({ tenantId: 't' }, [row('Eli: that is a funny name', { session: 's' })]);
    expect((await textHits(store, 't', 'pickles')).map((h) => h.content)).toEqual([
      'Dana: my cat is named Pickles',
      'Eli: that is a funny name',
    ]);
    await store.forget({ tenantId: 't' }, { id: first?.id as string }, { hard: true, now: NOW });
    expect(await textHits(store, 't', 'pickles')).toEqual([]);
    const context = db
      .prepare('SELECT context_text FROM memories WHERE content = ?')
      .pluck()
      .get('Eli: that is a funny name');
    expect(context).not.toContain('pickl');
    // Nothing of the purged memory stays in its own row's search fields either, its speaker included.
    expect(
      db.prepare('SELECT search_text, context_text, speaker_text FROM memories WHERE id = ?').get(first?.id),
    ).toEqual({
      search_text: '',
      context_text: '',
      speaker_text: '',
    });
    db.close();
  });

  it('re-indexes updated content and tags, and drops forgotten memories', async () => {
    const { db, store } = openStore();
    const [m] = await store.insert({ tenantId: 't' }, [row('the meeting is on monday')]);
    const id = m?.id as string;
    await store.update(
      { tenantId: 't' },
      { id },
      { content: 'the meeting moved to friday', content_hash: 'h2' },
      NOW,
    );
    expect(await textHits(store, 't', 'monday')).toEqual([]);
    expect((await textHits(store, 't', 'friday')).length).toBe(1);
    await store.update({ tenantId: 't' }, { id }, { tags: ['quarterly'] }, NOW);
    expect((await textHits(store, 't', 'quarterly')).length).toBe(1);
    await store.forget({ tenantId: 't' }, { id }, { hard: false, now: NOW });
    expect(await textHits(store, 't', 'friday')).toEqual([]);
    db.close();
  });

  it('migration 4 indexes the memories a version-3 database already holds, with their contexts', () => {
    const { db } = openAt(3);
    const insert = db.prepare(
      `INSERT INTO memories (id, tenant_id, session_id, content, content_hash, tags, created_at, updated_at, change_seq)
       VALUES (?, 't', ?, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run('m1', 's', 'Question about the lighthouse trip', 'h1', '[]', NOW, NOW, 1);
    insert.run('m2', 's', 'Yes it was windy', 'h2', '["travel"]', NOW, NOW, 2);
    expect(migrateSqlite(db).applied).toEqual([
      '4_search_text',
      '5_embedding_queue',
      '6_idempotency_keys',
      '7_config',
      '8_security',
      '9_jobs',
      '10_tiers',
      '11_episodes',
      '12_versions',
      '13_executions',
      '14_tier_last_move',
      '15_fts_tenant',
      '16_superseded_step_aside',
      '17_reworded_hash',
    ]);
    const store = new SqliteMemoryStore(db, silentLogger);
    return textHits(store, 't', 'lighthouse travel').then((hits) => {
      // Each holds one word itself and the other through its neighbour.
      expect(hits.map((h) => h.content).sort()).toEqual([
        'Question about the lighthouse trip',
        'Yes it was windy',
      ]);
      expect(hits[0]?.bm25).toBeCloseTo(hits[1]?.bm25 ?? 0, 1);
      db.close();
    });
  });

  it("migration 15 marks each indexed token with its tenant: a version-14 store's memories are found by their own tenant only", async () => {
    const { db, file } = openAt(14);
    // Rows as a version-14 store kept them: their tokens stored, their index entries without a tenant.
    const insert = db.prepare(
      `INSERT INTO memories (id, tenant_id, content, content_hash, tags, created_at, updated_at, change_seq, search_text)
       VALUES (?, ?, ?, ?, '[]', ?, ?, 1, ?)`,
    );
    const index = db.prepare('INSERT INTO memories_fts (rowid, search_text, context_text) VALUES (?, ?, ?)');
    for (const [id, tenant, content] of [
      ['m1', 'a', 'the lighthouse keeper'],
      ['m2', 'b', 'a lighthouse postcard'],
      ['m3', 'b', 'the ferry timetable'],
    ] as const) {
      const own = ownSearchText(content, []);
      const { lastInsertRowid } = insert.run(id, tenant, content, id, NOW, NOW, own);
      index.run(lastInsertRowid, own, '');
    }
    expect(migrateSqlite(db).applied).toEqual([
      '15_fts_tenant',
      '16_superseded_step_aside',
      '17_reworded_hash',
    ]);
    const store = new SqliteMemoryStore(db, silentLogger);
    expect((await textHits(store, 'a', 'lighthouse')).map((h) => h.content)).toEqual([
      'the lighthouse keeper',
    ]);
    expect((await textHits(store, 'b', 'lighthouse')).map((h) => h.content)).toEqual([
      'a lighthouse postcard',
    ]);
    expect(await textHits(store, 'a', 'ferry')).toEqual([]);
    const report = await sqliteIntegrity(db, file).check();
    expect(report.checks.find((c) => c.name === 'text_index')).toMatchObject({ status: 'ok' });
    db.close();
  });
});

describe('tenant text statistics', () => {
  it('stay equal to a recount of the live memories through inserts, updates and forgets', async () => {
    const { db, store } = openStore();
    const recount = (tenantId: string) => {
      const rows = db
        .prepare('SELECT search_text, context_text FROM memories WHERE tenant_id = ? AND deleted_at IS NULL')
        .all(tenantId) as { search_text: string; context_text: string }[];
      return {
        documents: rows.length,
        own_chars: rows.reduce((n, r) => n + r.search_text.length, 0),
        context_chars: rows.reduce((n, r) => n + r.context_text.length, 0),
      };
    };
    const stored = (tenantId: string) =>
      db
        .prepare('SELECT documents, own_chars, context_chars FROM search_stats WHERE tenant_id = ?')
        .get(tenantId);
    const s = { tenantId: 't' };
    const first = await store.insert(s, [
      row('Ana: the lighthouse trip was windy', { session: 'a' }),
      row('Ben: did you take photos?', { session: 'a' }),
      row('a note with no session'),
    ]);
    await store.insert(s, [
      row('Ana: yes, dozens of them', { session: 'a' }),
      row('Ben: send me some', { session: 'a' }),
    ]);
    await store.insert({ tenantId: 'other' }, [row('another tenant entirely', { session: 'a' })]);
    await store.update(
      s,
      { id: first[1]?.id as string },
      { content: 'Ben: did you take many photos there?', content_hash: 'x1' },
      NOW,
    );
    await store.update(s, { id: first[2]?.id as string }, { tags: ['travel', 'photos'] }, NOW);
    expect(stored('t')).toEqual(recount('t'));
    await store.forget(s, { id: first[0]?.id as string }, { hard: false, now: NOW });
    expect(stored('t')).toEqual(recount('t'));
    await store.forget(s, { id: first[1]?.id as string }, { hard: true, now: NOW });
    await store.forget(s, { id: first[0]?.id as string }, { hard: true, now: NOW }); // soft-deleted before
    expect(stored('t')).toEqual(recount('t'));
    expect(stored('other')).toEqual(recount('other'));
    db.close();
  });
});
