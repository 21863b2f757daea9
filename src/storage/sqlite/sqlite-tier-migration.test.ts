import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import { rewordedHash } from '../../modules/memory/content-hash.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import { openSqliteDatabase, type SqliteDatabase } from './sqlite-database.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite, migrationStatus, SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import { SqliteTierStore } from './sqlite-tier-store.js';

const NOW = '2026-06-01T12:00:00.000Z';
const A = { tenantId: 'a' };
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Brings a new database to schema `version` as that build would have (the migrations up to it). */
function migrateTo(db: SqliteDatabase, version: number): void {
  migrationStatus(db);
  for (const m of SQLITE_MIGRATIONS.filter((x) => x.version <= version)) {
    db.exec(m.sql);
    m.backfill?.(db);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
      m.version,
      m.name,
      NOW,
    );
  }
}

function tempDatabase(): SqliteDatabase {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-tier-migration-'));
  dirs.push(dir);
  return openSqliteDatabase(path.join(dir, 'brain.db'), { busyTimeoutMs: 1000, cacheSizeMb: 8 });
}

describe("SQLite tiers: a memory's last move in its row (migration 14)", () => {
  it('keeps the moves a version 13 store recorded, appends new ones after them, and counts each plan that moves', async () => {
    const db = tempDatabase();
    try {
      // A version 13 store: a warm memory with two recorded moves.
      migrateTo(db, 13);
      // The row as a version 13 store wrote it (this build's store writes the index of migration 15).
      const id = 'mem_warm';
      db.prepare(
        `INSERT INTO memories (id, tenant_id, content, content_hash, tags, created_at, updated_at, change_seq, storage_tier)
         VALUES (?, 'a', 'the warm one', 'h', '[]', ?, ?, 1, 'warm')`,
      ).run(id, NOW, NOW);
      const insert = db.prepare(
        `INSERT INTO tier_moves (tenant_id, memory_id, from_tier, to_tier, reason, score, at)
         VALUES ('a', ?, ?, ?, ?, 0.3, ?)`,
      );
      insert.run(id, 'hot', 'warm', 'first', NOW);
      insert.run(id, 'warm', 'hot', 'recalled', NOW);
      insert.run(id, 'hot', 'warm', 'last', NOW);

      expect(migrateSqlite(db).applied).toEqual([
        '14_tier_last_move',
        '15_fts_tenant',
        '16_superseded_step_aside',
        '17_reworded_hash',
      ]);
      const memories = new SqliteMemoryStore(db, silentLogger);
      // The recall cache's tier version starts where tier_moves' highest id was.
      const version = () =>
        db.prepare("SELECT value FROM brain_meta WHERE key = 'tier_version'").pluck().get();
      expect(version()).toBe('3');
      const tiers = new SqliteTierStore(db);
      const moves = async () => (await tiers.moves(A, id)).map((m) => `${m.reason}:${m.from}>${m.to}`);
      expect(await moves()).toEqual(['first:hot>warm', 'recalled:warm>hot', 'last:hot>warm']);

      const ref = (await tiers.rows('a', NOW)).find((r) => r.id === id)?.ref as number;
      const change = (from: 'hot' | 'warm', to: 'hot' | 'warm', reason: string) => ({
        id,
        ref,
        score: null,
        move: { id, from, to, reason, score: 0.4 },
      });
      const before = await memories.changeVersion(A);
      expect((await tiers.apply('a', [change('warm', 'hot', 'promoted')], NOW)).moved).toHaveLength(1);
      expect(await memories.changeVersion(A)).not.toBe(before);
      expect((await tiers.apply('a', [change('hot', 'warm', 'demoted')], NOW)).moved).toHaveLength(1);
      // A stale move (planned from hot, the memory is warm) changes nothing, the version included.
      expect((await tiers.apply('a', [change('hot', 'warm', 'stale')], NOW)).stale).toBe(1);
      expect(await moves()).toEqual([
        'first:hot>warm',
        'recalled:warm>hot',
        'last:hot>warm',
        'promoted:warm>hot',
        'demoted:hot>warm',
      ]);
      // The newest is in the memory's row; the one before it joined tier_moves.
      expect(db.prepare('SELECT count(*) FROM tier_moves WHERE memory_id = ?').pluck().get(id)).toBe(4);
      expect(version()).toBe('5');
      // A purge takes them all, the one in the row too.
      await memories.forget(A, { id }, { hard: true, now: NOW });
      expect(await tiers.moves(A, id)).toEqual([]);
    } finally {
      db.close();
    }
  });
});

describe('SQLite reworded hashes (migration 17)', () => {
  it("computes every stored memory's reworded hash, so that a rewording of one written before merges into it", async () => {
    const db = tempDatabase();
    try {
      migrateTo(db, 16);
      // Rows as a version 16 store wrote them, more than one page of the backfill, and a purged one.
      const insert = db.prepare(
        `INSERT INTO memories (id, tenant_id, content, content_hash, tags, created_at, updated_at, change_seq)
         VALUES (?, 'a', ?, ?, '[]', ?, ?, ?)`,
      );
      for (let i = 0; i < 2500; i++)
        insert.run(`mem_${i}`, `fact number ${i} is stored`, `h${i}`, NOW, NOW, i + 1);
      insert.run('mem_purged', '', '', NOW, NOW, 2501);
      expect(migrateSqlite(db).applied).toEqual(['17_reworded_hash']);
      const hashes = db.prepare('SELECT id, reworded_hash AS h FROM memories ORDER BY rid').all() as {
        id: string;
        h: string;
      }[];
      expect(hashes[0]).toEqual({ id: 'mem_0', h: rewordedHash('fact number 0 is stored') });
      expect(hashes[2499]).toEqual({ id: 'mem_2499', h: rewordedHash('fact number 2499 is stored') });
      expect(hashes.at(-1)).toEqual({ id: 'mem_purged', h: '' });
      const store = new SqliteMemoryStore(db, silentLogger);
      const again = newMemoryRow('Is stored: fact number 2499.', { merge_reworded: true });
      expect(await store.insert({ tenantId: 'a' }, [again])).toEqual([
        { id: 'mem_2499', status: 'duplicate', deduplicated: 'reworded' },
      ]);
    } finally {
      db.close();
    }
  });
});
