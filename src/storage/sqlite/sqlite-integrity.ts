import fs from 'node:fs';
import path from 'node:path';
import type {
  CheckpointResult,
  IntegrityCheck,
  IntegrityReport,
  MaintenanceResult,
  ProgressListener,
  ReindexResult,
  StorageIntegrity,
  StoreActivity,
} from '../storage-integrity.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { toStorageError } from './sqlite-errors.js';
import { rebuildSearchText, searchTextDrift } from './sqlite-search-rebuild.js';
import { ftsValues, INSERT_FTS_SQL, liveSearchFields } from './sqlite-search-text.js';
import { checkSavedIndexes } from './sqlite-vector-files.js';
import { vectorIndexDirFor } from './vector-index-file.js';

/** Most problem lines of one check quoted in its message. */
const QUOTED = 5;
/** VACUUM writes a copy of the database through the WAL: this much free space per byte of file, at least. */
const VACUUM_ROOM = 1.1;

function fileSize(file: string): number {
  return fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
}

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** One check, run so that a failure of its own queries (a damaged page) is its verdict, not a throw. */
function guarded(name: string, dbPath: string, run: () => Omit<IntegrityCheck, 'name'>): IntegrityCheck {
  try {
    return { name, ...run() };
  } catch (error) {
    const mapped = toStorageError(error, dbPath);
    const text = error instanceof Error ? error.message : String(error);
    const corrupt = (mapped as { code?: string }).code === 'STORAGE_CORRUPT';
    return {
      name,
      status: 'fail',
      message: `could not run: ${text}`,
      fix: corrupt ? 'brain db recover' : 'brain db reindex',
    };
  }
}

/** `PRAGMA integrity_check` (or `quick_check`): SQLite's own page, b-tree and index check. */
function engineCheck(db: SqliteDatabase, quick: boolean): Omit<IntegrityCheck, 'name'> {
  const rows = db.pragma(quick ? 'quick_check' : 'integrity_check') as Record<string, string>[];
  const lines = rows.map((r) => Object.values(r)[0] ?? '');
  if (lines.length === 1 && lines[0] === 'ok') return { status: 'ok', message: 'no damaged page or index' };
  return {
    status: 'fail',
    message: `${lines.length} problem(s): ${lines.slice(0, QUOTED).join('; ')}`,
    fix: 'brain db recover (or restore the newest backup)',
  };
}

function foreignKeys(db: SqliteDatabase): Omit<IntegrityCheck, 'name'> {
  const rows = db.pragma('foreign_key_check') as { table: string; parent: string }[];
  if (rows.length === 0) return { status: 'ok', message: 'every reference points at an existing row' };
  const byTable = new Map<string, number>();
  for (const r of rows)
    byTable.set(`${r.table} → ${r.parent}`, (byTable.get(`${r.table} → ${r.parent}`) ?? 0) + 1);
  return {
    status: 'fail',
    message: `${rows.length} row(s) point at missing rows: ${[...byTable].map(([k, n]) => `${k} ${n}`).join(', ')}`,
    fix: 'brain db reindex (drops vectors and queue entries of missing memories)',
  };
}

/** FTS5's own check of the index structure, then the index's rows and terms against the memories'. */
function textIndex(db: SqliteDatabase): Omit<IntegrityCheck, 'name'> {
  db.exec("INSERT INTO memories_fts (memories_fts, rank) VALUES ('integrity-check', 0)");
  const count = (sql: string) => (db.prepare(sql).pluck().get() as number) ?? 0;
  const orphans = count(
    'SELECT count(*) FROM (SELECT rowid FROM memories_fts EXCEPT SELECT rid FROM memories WHERE deleted_at IS NULL)',
  );
  const missing = count(
    'SELECT count(*) FROM (SELECT rid FROM memories WHERE deleted_at IS NULL EXCEPT SELECT rowid FROM memories_fts)',
  );
  const terms = termDifferences(db);
  const live = count('SELECT count(*) FROM memories WHERE deleted_at IS NULL');
  if (orphans === 0 && missing === 0 && terms === 0)
    return { status: 'ok', message: `${live} live memories indexed, every term in step with their text` };
  return {
    status: 'fail',
    message: `${missing} live memories missing from the index, ${orphans} entries of forgotten or missing memories, ${terms} terms counted differently from the rows`,
    fix: 'brain db reindex',
  };
}

/**
 * The index's terms (per column, documents and occurrences) against an index built now, in memory, from
 * the live rows' stored tokens with the same tokenizer: any difference is drift.
 */
function termDifferences(db: SqliteDatabase): number {
  db.exec(`
    DROP TABLE IF EXISTS temp.brain_check_expect;
    CREATE VIRTUAL TABLE temp.brain_check_expect USING fts5 (search_text, context_text, content = '',
      tokenize = 'unicode61 remove_diacritics 0');
  `);
  // The entries the store would write now (each token behind its tenant's mark: ftsValues).
  const expect = db.prepare(INSERT_FTS_SQL.replace('memories_fts', 'temp.brain_check_expect'));
  for (const [rid, tenant, own, context] of liveSearchFields(db))
    expect.run(...ftsValues(rid, tenant, own, context));
  db.exec(`
    CREATE VIRTUAL TABLE IF NOT EXISTS temp.brain_check_expect_vocab USING fts5vocab(temp, brain_check_expect, 'col');
    CREATE VIRTUAL TABLE IF NOT EXISTS temp.brain_check_vocab USING fts5vocab(main, memories_fts, 'col');
  `);
  try {
    return db
      .prepare(
        `SELECT count(*) FROM (
           SELECT * FROM (SELECT term, col, doc, cnt FROM temp.brain_check_vocab
             EXCEPT SELECT term, col, doc, cnt FROM temp.brain_check_expect_vocab)
           UNION ALL
           SELECT * FROM (SELECT term, col, doc, cnt FROM temp.brain_check_expect_vocab
             EXCEPT SELECT term, col, doc, cnt FROM temp.brain_check_vocab))`,
      )
      .pluck()
      .get() as number;
  } finally {
    db.exec(`
      DROP TABLE IF EXISTS temp.brain_check_expect_vocab;
      DROP TABLE IF EXISTS temp.brain_check_vocab;
      DROP TABLE IF EXISTS temp.brain_check_expect;
    `);
  }
}

/** Each memory's stored tokens against the ones its content, tags and session neighbours give now. */
function textTokens(db: SqliteDatabase): Omit<IntegrityCheck, 'name'> {
  const drift = searchTextDrift(db);
  if (drift.rows === 0)
    return { status: 'ok', message: `${drift.checked} memories' search tokens match their text` };
  return {
    status: 'fail',
    message: `${drift.rows} of ${drift.checked} live memories hold search tokens that their text no longer gives`,
    fix: 'brain db reindex',
  };
}

/** search_stats (each tenant's documents and lengths, for BM25) against counts of the live rows. */
function textStatistics(db: SqliteDatabase): Omit<IntegrityCheck, 'name'> {
  const kept = new Map(
    (
      db.prepare('SELECT tenant_id, documents, own_chars, context_chars FROM search_stats').all() as {
        tenant_id: string;
        documents: number;
        own_chars: number;
        context_chars: number;
      }[]
    ).map((r) => [r.tenant_id, r]),
  );
  const counted = new Map<string, { documents: number; own: number; context: number }>();
  for (const r of db
    .prepare('SELECT tenant_id, search_text, context_text FROM memories WHERE deleted_at IS NULL')
    .raw(true)
    .iterate() as IterableIterator<[string, string, string]>) {
    const c = counted.get(r[0]) ?? { documents: 0, own: 0, context: 0 };
    // JS string lengths, as the store counts them (not SQLite's character count).
    c.documents++;
    c.own += r[1].length;
    c.context += r[2].length;
    counted.set(r[0], c);
  }
  const wrong: string[] = [];
  for (const tenant of new Set([...kept.keys(), ...counted.keys()])) {
    const k = kept.get(tenant);
    const c = counted.get(tenant) ?? { documents: 0, own: 0, context: 0 };
    const same = k
      ? k.documents === c.documents && k.own_chars === c.own && k.context_chars === c.context
      : c.documents === 0;
    if (!same) wrong.push(`${tenant} (kept ${k?.documents ?? 0} documents, counted ${c.documents})`);
  }
  if (wrong.length === 0)
    return { status: 'ok', message: `statistics of ${counted.size} tenant(s) match the rows` };
  return {
    status: 'fail',
    message: `text statistics differ from the rows for ${wrong.length} tenant(s): ${wrong.slice(0, QUOTED).join(', ')}`,
    fix: 'brain db reindex',
  };
}

/** Vector rows against the memories: no orphans, none of a purged memory, one length per model. */
function vectors(db: SqliteDatabase): Omit<IntegrityCheck, 'name'> {
  const count = (sql: string) => (db.prepare(sql).pluck().get() as number) ?? 0;
  const orphans = count(
    'SELECT count(*) FROM memory_embeddings e WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.rid = e.rid)',
  );
  const purged = count(
    "SELECT count(*) FROM memory_embeddings e JOIN memories m ON m.rid = e.rid WHERE m.content_hash = ''",
  );
  const models = db
    .prepare(
      `SELECT model, count(*) AS n, count(DISTINCT length(embedding)) AS lengths FROM memory_embeddings GROUP BY model`,
    )
    .all() as { model: string; n: number; lengths: number }[];
  const mixed = models.filter((m) => m.lengths > 1).map((m) => m.model);
  const queueOrphans = count(
    'SELECT count(*) FROM embedding_queue q WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.rid = q.rid)',
  );
  const queued = count('SELECT count(*) FROM embedding_queue');
  const without = count(
    `SELECT count(*) FROM memories m WHERE m.deleted_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM memory_embeddings e WHERE e.rid = m.rid)
       AND NOT EXISTS (SELECT 1 FROM embedding_queue q WHERE q.rid = m.rid)`,
  );
  const summary = models.length === 0 ? 'no vectors' : models.map((m) => `${m.n} of ${m.model}`).join(', ');
  const info = `${summary}; ${queued} waiting in the embedding queue; ${without} live memories without a vector or queue entry (queued at the next start with an embedder)`;
  if (orphans === 0 && purged === 0 && mixed.length === 0 && queueOrphans === 0)
    return { status: 'ok', message: info };
  const problems = [
    orphans > 0 ? `${orphans} vectors of missing memories` : '',
    purged > 0 ? `${purged} vectors of purged memories` : '',
    mixed.length > 0 ? `vectors of different lengths under one model (${mixed.join(', ')})` : '',
    queueOrphans > 0 ? `${queueOrphans} queue entries of missing memories` : '',
  ].filter((p) => p.length > 0);
  return { status: 'fail', message: `${problems.join(', ')}; ${info}`, fix: 'brain db reindex' };
}

/**
 * Every consistency check and upkeep command of the SQLite file. Checks that find the file damaged
 * report it as their verdict; upkeep errors are mapped like every store call's (toStorageError).
 */
export function sqliteIntegrity(db: SqliteDatabase, dbPath: string): StorageIntegrity {
  const indexDir = vectorIndexDirFor(dbPath);
  const run = <T>(work: () => T): T => {
    try {
      return work();
    } catch (error) {
      throw toStorageError(error, dbPath);
    }
  };
  const size = () => fileSize(dbPath) + fileSize(`${dbPath}-wal`);
  return {
    async check(options = {}): Promise<IntegrityReport> {
      const started = performance.now();
      const quick = options.quick === true;
      const checks: IntegrityCheck[] = [
        guarded(quick ? 'quick_check' : 'integrity_check', dbPath, () => engineCheck(db, quick)),
      ];
      if (!quick) {
        checks.push(
          guarded('foreign_keys', dbPath, () => foreignKeys(db)),
          guarded('text_index', dbPath, () => textIndex(db)),
          guarded('text_tokens', dbPath, () => textTokens(db)),
          guarded('text_statistics', dbPath, () => textStatistics(db)),
          guarded('vectors', dbPath, () => vectors(db)),
          guarded('vector_snapshots', dbPath, () => checkSavedIndexes(db, indexDir)),
        );
      }
      return {
        engine: 'sqlite',
        location: dbPath,
        ok: checks.every((c) => c.status !== 'fail'),
        checks,
        seconds: (performance.now() - started) / 1000,
      };
    },
    async vacuum(): Promise<MaintenanceResult> {
      const started = performance.now();
      const before = size();
      const free = freeBytes(path.dirname(dbPath));
      if (free < before * VACUUM_ROOM)
        return {
          operation: 'vacuum',
          ran: false,
          message: `VACUUM needs about ${mib(before * VACUUM_ROOM)} free beside ${dbPath} (it writes a copy of the database through the WAL) but the disk has ${mib(free)}: free space first`,
          seconds: 0,
          bytesBefore: before,
          bytesAfter: before,
        };
      run(() => {
        db.exec('VACUUM');
        // The copy went through the WAL: fold it back so the file's size is what VACUUM achieved.
        db.pragma('wal_checkpoint(TRUNCATE)');
      });
      const after = size();
      return {
        operation: 'vacuum',
        ran: true,
        message: `VACUUM rewrote ${dbPath}: ${mib(before)} → ${mib(after)}`,
        seconds: (performance.now() - started) / 1000,
        bytesBefore: before,
        bytesAfter: after,
      };
    },
    async analyze(): Promise<MaintenanceResult> {
      const started = performance.now();
      const before = size();
      run(() => {
        db.exec('ANALYZE');
        db.pragma('optimize');
      });
      return {
        operation: 'analyze',
        ran: true,
        message: `ANALYZE refreshed the planner's statistics of ${dbPath}`,
        seconds: (performance.now() - started) / 1000,
        bytesBefore: before,
        bytesAfter: size(),
      };
    },
    async checkpoint(): Promise<CheckpointResult> {
      const [row] = run(() => db.pragma('wal_checkpoint(TRUNCATE)')) as {
        busy: number;
        log: number;
        checkpointed: number;
      }[];
      const busy = (row?.busy ?? 0) !== 0;
      const logPages = Math.max(0, row?.log ?? 0);
      const checkpointedPages = Math.max(0, row?.checkpointed ?? 0);
      return {
        ran: true,
        busy,
        logPages,
        checkpointedPages,
        message: busy
          ? `checkpoint of ${dbPath} copied ${checkpointedPages} of ${logPages} WAL pages: another connection is reading or writing, the rest is copied on a later checkpoint`
          : `checkpoint of ${dbPath} copied ${checkpointedPages} of ${logPages} WAL pages and truncated the WAL`,
      };
    },
    async activity(since: string): Promise<StoreActivity> {
      return run(() => {
        const groups = (column: string) =>
          Object.fromEntries(
            (
              db
                .prepare(
                  `SELECT ${column} AS k, count(*) AS n FROM memories WHERE deleted_at IS NULL GROUP BY 1 ORDER BY 2 DESC`,
                )
                .all() as { k: string; n: number }[]
            ).map((r) => [r.k, r.n]),
          );
        const one = (sql: string, ...params: unknown[]) =>
          db
            .prepare(sql)
            .pluck()
            .get(...params) as number;
        return {
          memories: {
            live: one('SELECT count(*) FROM memories WHERE deleted_at IS NULL'),
            forgotten: one('SELECT count(*) FROM memories WHERE deleted_at IS NOT NULL'),
            byType: groups('type'),
            byTier: groups('storage_tier'),
          },
          sessions: {
            total: one('SELECT count(*) FROM sessions'),
            activeSince: one('SELECT count(*) FROM sessions WHERE last_seen_at >= ?', since),
          },
        };
      });
    },
    async reindex(onProgress?: ProgressListener): Promise<ReindexResult> {
      const started = performance.now();
      const result = run(() => rebuildSearchText(db, onProgress));
      const removedIndexFiles = removeSavedIndexes(indexDir);
      return { ...result, removedIndexFiles, seconds: (performance.now() - started) / 1000 };
    },
  };
}

/** Removes the saved ANN indexes: derived data, rebuilt from the rows by the next start. */
function removeSavedIndexes(dir: string | null): number {
  if (dir === null || !fs.existsSync(dir)) return 0;
  let removed = 0;
  for (const name of fs.readdirSync(dir)) {
    if (!/\.(usearch|json)$/.test(name)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    if (name.endsWith('.usearch')) removed++;
  }
  return removed;
}
