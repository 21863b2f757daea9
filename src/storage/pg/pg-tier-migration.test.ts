import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../../../test/services/engines.js';
import { noChangeBus, PgDatabases } from '../../../test/services/pg-store-fixture.js';
import { silentLogger } from '../../core/logger.js';
import { rewordedHash } from '../../modules/memory/content-hash.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import { float8ArrayBinary, int4ArrayBinary, int8ArrayBinary, textArrayBinary } from './pg-memory-rows.js';
import { PgMemoryStore } from './pg-memory-store.js';
import { migratePostgres, PG_MIGRATIONS } from './pg-migrations.js';
import { PgTierStore } from './pg-tier-store.js';

const skip = !postgresBaseUrl();
const label = (name: string) => `${name}${skip ? ` (skipped: ${postgresSkipReason()})` : ''}`;
const NOW = '2026-06-01T12:00:00.000Z';
const A = { tenantId: 'a' };
const databases = new PgDatabases();
afterEach(() => databases.closeAll());

/** A new database at schema `version`, filled by `seed` with a raw client (the store's code not used). */
async function storeAt(version: number, seed: (raw: pg.Client) => Promise<void>): Promise<string> {
  const url = newPostgresDatabase();
  const raw = new pg.Client({ connectionString: url });
  await raw.connect();
  try {
    await raw.query(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    for (const m of PG_MIGRATIONS.filter((x) => x.version <= version)) {
      await raw.query(m.sql);
      await raw.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
    }
    await seed(raw);
  } finally {
    await raw.end();
  }
  return url;
}

describe.skipIf(skip)(label('PostgreSQL tiers in memory_tiers (migrations 12 to 15)'), () => {
  it('moves the tiers, scores and access marks of a version 11 store into memory_tiers, keeps its recorded moves, and reads them back', async () => {
    const url = await storeAt(11, async (raw) => {
      // Four memories as a version 11 store holds them: one untouched, one warm, one cold, one rescored.
      await raw.query(
        `INSERT INTO memories (id, tenant_id, content, content_hash, created_at, updated_at, storage_tier,
           memory_score, tier_access_count, access_count)
         VALUES ('mem_hot', 'a', 'untouched', 'h1', $1, $1, 'hot', 0.5, 0, 0),
                ('mem_warm', 'a', 'demoted', 'h2', $1, $1, 'warm', 0.2, 3, 4),
                ('mem_cold', 'a', 'archived', 'h3', $1, $1, 'cold', 0.1, 0, 0),
                ('mem_rescored', 'a', 'rescored', 'h4', $1, $1, 'hot', 0.8, 0, 2)`,
        [NOW],
      );
      await raw.query(
        `INSERT INTO tier_moves (tenant_id, memory_id, from_tier, to_tier, reason, score, at)
         VALUES ('a', 'mem_warm', 'hot', 'warm', 'first', 0.3, $1), ('a', 'mem_cold', 'warm', 'cold', 'unused', 0.1, $1),
                ('a', 'mem_warm', 'warm', 'hot', 'recalled', 0.6, $1), ('a', 'mem_warm', 'hot', 'warm', 'last', 0.2, $1)`,
        [NOW],
      );
    });
    const db = databases.open(url);
    expect((await migratePostgres(db)).applied).toEqual([
      '12_memory_tiers',
      '13_tier_moves_by_memory',
      '14_tier_last_move',
      '15_tier_reasons',
      '16_memory_change_versions',
      '17_superseded_step_aside',
      '18_reworded_hash',
    ]);
    const { rows: columns } = await db.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'memories'
         AND column_name IN ('storage_tier', 'memory_score', 'tier_access_count')`,
    );
    expect(columns).toEqual([]);
    const { rows: tiers } = await db.query<{ id: string; storage_tier: string; tier_access_count: number }>(
      `SELECT m.id, t.storage_tier, t.tier_access_count FROM memory_tiers t JOIN memories m ON m.rid = t.rid
       ORDER BY m.id`,
    );
    // The untouched memory needs no row: no row reads as hot with the default score.
    expect(tiers).toEqual([
      { id: 'mem_cold', storage_tier: 'cold', tier_access_count: 0 },
      { id: 'mem_rescored', storage_tier: 'hot', tier_access_count: 0 },
      { id: 'mem_warm', storage_tier: 'warm', tier_access_count: 3 },
    ]);

    const store = new PgMemoryStore(db, silentLogger, noChangeBus);
    const read = async (id: string) => {
      const m = await store.get(A, id, NOW);
      return [m?.storage_tier, m?.memory_score];
    };
    expect(await read('mem_hot')).toEqual(['hot', 0.5]);
    expect(await read('mem_warm')).toEqual(['warm', 0.2]);
    expect(await read('mem_cold')).toEqual(['cold', 0.1]);
    expect(await read('mem_rescored')).toEqual(['hot', 0.8]);
    // Recall and lists leave the cold one out unless asked; the tier store reads every mark.
    const listed = await store.list(A, { sort: 'memory_score', order: 'desc', limit: 10, offset: 0 }, NOW);
    expect(listed.items.map((m) => m.id)).toEqual(['mem_rescored', 'mem_hot', 'mem_warm']);
    const tierStore = new PgTierStore(db, {
      flushTouches: async () => undefined,
      changed: async () => undefined,
    });
    // The moves recorded before, each memory's in the order made, now found by the key (memory_id, id).
    expect((await tierStore.moves(A, 'mem_warm')).map((m) => m.reason)).toEqual([
      'first',
      'recalled',
      'last',
    ]);
    expect((await tierStore.moves(A, 'mem_cold')).map((m) => m.reason)).toEqual(['unused']);
    const { rows: key } = await db.query<{ def: string }>(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'tier_moves'::regclass
         AND contype = 'p'`,
    );
    expect(key).toEqual([{ def: 'PRIMARY KEY (memory_id, id)' }]);
    const tierRows = await tierStore.rows('a', NOW);
    expect(
      tierRows
        .map((r) => [r.id, r.storage_tier, r.memory_score, r.tier_access_count])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    ).toEqual([
      ['mem_cold', 'cold', 0.1, 0],
      ['mem_hot', 'hot', 0.5, 0],
      ['mem_rescored', 'hot', 0.8, 0],
      ['mem_warm', 'warm', 0.2, 3],
    ]);

    // Moves made after the migration follow the ones recorded before it, in order: the newest is kept
    // in the tier row, and the one before it joins the rest when the memory moves again.
    const ref = tierRows.find((r) => r.id === 'mem_warm')?.ref as number;
    const move = (from: 'hot' | 'warm', to: 'hot' | 'warm', reason: string) => ({
      id: 'mem_warm',
      ref,
      score: null,
      move: { id: 'mem_warm', from, to, reason, score: 0.4 },
    });
    expect((await tierStore.apply('a', [move('warm', 'hot', 'promoted')], NOW)).moved).toHaveLength(1);
    expect((await tierStore.apply('a', [move('hot', 'warm', 'demoted')], NOW)).moved).toHaveLength(1);
    expect((await tierStore.moves(A, 'mem_warm')).map((m) => `${m.reason}:${m.from}>${m.to}`)).toEqual([
      'first:hot>warm',
      'recalled:warm>hot',
      'last:hot>warm',
      'promoted:warm>hot',
      'demoted:hot>warm',
    ]);
    const { rows: kept } = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM tier_moves WHERE memory_id = 'mem_warm'",
    );
    expect(kept).toEqual([{ n: '4' }]);
  });

  it("numbers a version 14 store's last-move reasons in tier_reasons, each distinct reason once, and reads them back", async () => {
    const url = await storeAt(14, async (raw) => {
      await raw.query(
        `INSERT INTO memories (id, tenant_id, content, content_hash, created_at, updated_at)
         VALUES ('mem_one', 'a', 'one', 'h1', $1, $1), ('mem_two', 'a', 'two', 'h2', $1, $1),
                ('mem_three', 'a', 'three', 'h3', $1, $1)`,
        [NOW],
      );
      // Two memories demoted for the same reason, one never moved (a score only).
      await raw.query(
        `INSERT INTO memory_tiers (rid, storage_tier, memory_score, tier_access_count, moved_from, moved_reason,
           moved_score, moved_at)
         SELECT rid, CASE WHEN id = 'mem_three' THEN 'hot' ELSE 'warm' END, 0.3, 0,
           CASE WHEN id = 'mem_three' THEN NULL ELSE 'hot' END,
           CASE WHEN id = 'mem_three' THEN NULL ELSE 'over capacity' END,
           CASE WHEN id = 'mem_three' THEN NULL ELSE 0.3 END, CASE WHEN id = 'mem_three' THEN NULL ELSE $1 END
         FROM memories`,
        [NOW],
      );
    });
    const db = databases.open(url);
    expect((await migratePostgres(db)).applied).toEqual([
      '15_tier_reasons',
      '16_memory_change_versions',
      '17_superseded_step_aside',
      '18_reworded_hash',
    ]);
    const { rows: reasons } = await db.query('SELECT reason FROM tier_reasons');
    expect(reasons).toEqual([{ reason: 'over capacity' }]);
    const { rows: type } = await db.query(
      `SELECT data_type FROM information_schema.columns WHERE table_name = 'memory_tiers' AND column_name = 'moved_reason'`,
    );
    expect(type).toEqual([{ data_type: 'integer' }]);
    const tierStore = new PgTierStore(db, {
      flushTouches: async () => undefined,
      changed: async () => undefined,
    });
    for (const id of ['mem_one', 'mem_two'])
      expect(await tierStore.moves(A, id)).toEqual([
        { from: 'hot', to: 'warm', reason: 'over capacity', score: 0.3, at: NOW },
      ]);
    expect(await tierStore.moves(A, 'mem_three')).toEqual([]);
    // A move made now adds its new reason once, and the one it replaces joins tier_moves with its text.
    const ref = (await tierStore.rows('a', NOW)).find((r) => r.id === 'mem_one')?.ref as number;
    const promote = {
      id: 'mem_one',
      from: 'warm' as const,
      to: 'hot' as const,
      reason: 'recalled',
      score: 0.7,
    };
    expect(
      (await tierStore.apply('a', [{ id: 'mem_one', ref, score: null, move: promote }], NOW)).moved,
    ).toEqual([promote]);
    expect((await tierStore.moves(A, 'mem_one')).map((m) => `${m.reason}:${m.from}>${m.to}`)).toEqual([
      'over capacity:hot>warm',
      'recalled:warm>hot',
    ]);
    const { rows: after } = await db.query('SELECT reason FROM tier_reasons ORDER BY id');
    expect(after).toEqual([{ reason: 'over capacity' }, { reason: 'recalled' }]);
    // Moves for reasons already known take no number from the sequence: plans repeat their reasons.
    const sequence = async () =>
      (await db.query<{ v: string }>('SELECT last_value AS v FROM tier_reasons_id_seq')).rows[0]?.v;
    const numbered = await sequence();
    const demote = { ...promote, from: 'hot' as const, to: 'warm' as const, reason: 'over capacity' };
    const two = { id: 'mem_two', from: 'warm' as const, to: 'cold' as const, reason: 'recalled', score: 0.1 };
    const refs = new Map((await tierStore.rows('a', NOW)).map((r) => [r.id, r.ref]));
    const applied = await tierStore.apply(
      'a',
      [
        { id: 'mem_one', ref: refs.get('mem_one') as number, score: null, move: demote },
        { id: 'mem_two', ref: refs.get('mem_two') as number, score: null, move: two },
      ],
      NOW,
    );
    expect(applied.moved).toEqual([demote, two]);
    expect(await sequence()).toBe(numbered);
  });
});

describe.skipIf(skip)(label('PostgreSQL binary arrays (how a rebalance sends its plan)'), () => {
  it('arrive as sent: text with nulls, empty and non-ASCII strings, float8 and int4 with nulls', async () => {
    const db = databases.open(newPostgresDatabase());
    const text = ['mem_1', null, '', 'café ☕ 日本', 'a"b\\c,{d}'];
    const floats = [0.1, null, -2.5e-300, 1e300, 0];
    const ints = [0, null, -7, 2_147_483_647];
    const { rows } = await db.query<{ t: (string | null)[]; f: (number | null)[]; i: (number | null)[] }>(
      'SELECT $1::text[] AS t, $2::float8[] AS f, $3::int4[] AS i',
      [textArrayBinary(text), float8ArrayBinary(floats), int4ArrayBinary(ints)],
    );
    expect(rows[0]).toEqual({ t: text, f: floats, i: ints });
    const empty = await db.query<{ n: number }>('SELECT cardinality($1::text[]) AS n', [textArrayBinary([])]);
    expect(empty.rows[0]?.n).toBe(0);
  });

  it('int8 (a row id) arrives exactly up to 2^53; a number it cannot hold is refused before sending', async () => {
    const db = databases.open(newPostgresDatabase());
    const ids = [0, 1, null, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 123_456_789_012, Number.MAX_SAFE_INTEGER];
    const { rows } = await db.query<{ i: (string | null)[] }>('SELECT $1::int8[] AS i', [
      int8ArrayBinary(ids),
    ]);
    expect(rows[0]?.i).toEqual(ids.map((v) => (v === null ? null : String(v))));
    for (const bad of [-1, 0.5, 2 ** 53]) expect(() => int8ArrayBinary([bad])).toThrow(/not a safe integer/);
  });
});

describe.skipIf(skip)(label('PostgreSQL reworded hashes (migration 18)'), () => {
  it("computes every stored memory's reworded hash, so that a rewording of one written before merges into it", async () => {
    const url = await storeAt(17, async (raw) => {
      // Rows as a version 17 store wrote them, more than one page of the backfill, and a purged one.
      await raw.query(
        `INSERT INTO memories (id, tenant_id, content, content_hash, created_at, updated_at)
         SELECT 'mem_' || i, 'a', 'fact number ' || i || ' is stored', 'h' || i, $1, $1 FROM generate_series(0, 5999) i`,
        [NOW],
      );
      await raw.query(
        `INSERT INTO memories (id, tenant_id, content, content_hash, created_at, updated_at, deleted_at)
         VALUES ('mem_purged', 'a', '', '', $1, $1, $1)`,
        [NOW],
      );
    });
    const db = databases.open(url);
    expect((await migratePostgres(db)).applied).toEqual(['18_reworded_hash']);
    const { rows } = await db.query<{ id: string; h: string }>(
      "SELECT id, reworded_hash AS h FROM memories WHERE id IN ('mem_0', 'mem_5999', 'mem_purged') ORDER BY rid",
    );
    expect(rows).toEqual([
      { id: 'mem_0', h: rewordedHash('fact number 0 is stored') },
      { id: 'mem_5999', h: rewordedHash('fact number 5999 is stored') },
      { id: 'mem_purged', h: '' },
    ]);
    const { rows: blank } = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM memories WHERE reworded_hash = '' AND content <> ''",
    );
    expect(blank[0]?.n).toBe('0');
    const store = new PgMemoryStore(db, silentLogger, noChangeBus);
    const again = newMemoryRow('Is stored: fact number 5999.', { merge_reworded: true });
    expect(await store.insert(A, [again])).toEqual([
      { id: 'mem_5999', status: 'duplicate', deduplicated: 'reworded' },
    ]);
  });
});
