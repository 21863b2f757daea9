import { rewordedHash } from '../../modules/memory/content-hash.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { backfillSearchText, markIndexedTokens } from './sqlite-search-text.js';

interface Migration {
  version: number;
  name: string;
  sql: string;
  /** Work SQL cannot do (tokenising existing rows in JS), run after `sql` in the same transaction. */
  backfill?: (db: SqliteDatabase) => void;
}

/** Versioned schema changes, applied in order, each in its own transaction, recorded in schema_migrations. */
export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'memories',
    sql: `
CREATE TABLE memories (
  rid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  project TEXT,
  session_id TEXT,
  key TEXT,
  content TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  type TEXT NOT NULL DEFAULT 'fact',
  tags TEXT NOT NULL DEFAULT '[]',
  metadata TEXT NOT NULL DEFAULT '{}',
  importance REAL NOT NULL DEFAULT 0.5,
  storage_tier TEXT NOT NULL DEFAULT 'hot' CHECK (storage_tier IN ('hot', 'warm', 'cold')),
  memory_score REAL NOT NULL DEFAULT 0.5,
  access_count INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  accessed_at TEXT,
  expires_at TEXT,
  valid_from TEXT,
  valid_to TEXT,
  superseded_by TEXT,
  deleted_at TEXT,
  change_seq INTEGER NOT NULL
);
CREATE UNIQUE INDEX memories_key ON memories (tenant_id, coalesce(project, ''), key)
  WHERE key IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX memories_hash ON memories (tenant_id, coalesce(project, ''), content_hash) WHERE deleted_at IS NULL;
CREATE INDEX memories_project_created ON memories (tenant_id, project, created_at);
CREATE INDEX memories_project_importance ON memories (tenant_id, project, importance);
CREATE INDEX memories_session ON memories (tenant_id, session_id) WHERE session_id IS NOT NULL;
CREATE INDEX memories_tenant_created ON memories (tenant_id, created_at);
CREATE INDEX memories_change ON memories (tenant_id, change_seq);

CREATE TABLE memory_tags (
  tag TEXT NOT NULL,
  rid INTEGER NOT NULL REFERENCES memories (rid) ON DELETE CASCADE,
  PRIMARY KEY (tag, rid)
) WITHOUT ROWID;
CREATE INDEX memory_tags_rid ON memory_tags (rid);

CREATE TABLE memory_embeddings (
  rid INTEGER PRIMARY KEY REFERENCES memories (rid) ON DELETE CASCADE,
  model TEXT NOT NULL,
  embedding BLOB NOT NULL
);

CREATE VIRTUAL TABLE memories_fts USING fts5 (
  content, tags, content = 'memories', content_rowid = 'rid',
  tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories WHEN new.deleted_at IS NULL BEGIN
  INSERT INTO memories_fts (rowid, content, tags) VALUES (new.rid, new.content, new.tags);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories WHEN old.deleted_at IS NULL BEGIN
  INSERT INTO memories_fts (memories_fts, rowid, content, tags) VALUES ('delete', old.rid, old.content, old.tags);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF content, tags, deleted_at ON memories BEGIN
  INSERT INTO memories_fts (memories_fts, rowid, content, tags)
    SELECT 'delete', old.rid, old.content, old.tags WHERE old.deleted_at IS NULL;
  INSERT INTO memories_fts (rowid, content, tags)
    SELECT new.rid, new.content, new.tags WHERE new.deleted_at IS NULL;
END;

CREATE TABLE sessions (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  project TEXT,
  client TEXT,
  created_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
`,
  },
  {
    version: 2,
    name: 'fts_insert_in_store',
    // New rows enter memories_fts from SqliteMemoryStore.insert, in the same transaction, not from an
    // insert trigger: a trigger's write to FTS5 opens a savepoint, and FTS5 flushes its pending terms to
    // disk at every savepoint, so the trigger made each row its own segment (measured 47 vs 18 µs per row
    // in bulk). Updates and deletes are rare and stay on triggers.
    sql: 'DROP TRIGGER IF EXISTS memories_fts_insert;',
  },
  {
    version: 3,
    name: 'brain_meta',
    // instance_id names this database, so that files derived from it (saved vector indexes) are never
    // used with another database put at the same path.
    sql: `
CREATE TABLE brain_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO brain_meta (key, value) VALUES ('instance_id', lower(hex(randomblob(16))));
`,
  },
  {
    version: 4,
    name: 'search_text',
    // Full text indexes Brain's own search tokens (Porter-stemmed words of content and tags, the same
    // function the query goes through) and each memory's context: the tokens of the memories before and
    // after it in its session. speaker_text holds the tokens of who said it (see speakerOf), for the
    // speaker boost; it is not indexed. search_stats holds each tenant's indexed documents and field
    // lengths, for BM25, kept with the index (counting them took ~35 ms at 100k memories). The index is contentless with deletes by rowid, kept by the store in the
    // same transaction as the row (no triggers), so a row's index entry never needs its old text.
    sql: `
DROP TRIGGER IF EXISTS memories_fts_insert;
DROP TRIGGER IF EXISTS memories_fts_delete;
DROP TRIGGER IF EXISTS memories_fts_update;
DROP TABLE IF EXISTS memories_fts;
ALTER TABLE memories ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
ALTER TABLE memories ADD COLUMN context_text TEXT NOT NULL DEFAULT '';
ALTER TABLE memories ADD COLUMN speaker_text TEXT NOT NULL DEFAULT '';
CREATE VIRTUAL TABLE memories_fts USING fts5 (
  search_text, context_text, content = '', contentless_delete = 1,
  tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TABLE search_stats (
  tenant_id TEXT PRIMARY KEY,
  documents INTEGER NOT NULL,
  own_chars INTEGER NOT NULL,
  context_chars INTEGER NOT NULL
);
`,
    backfill: backfillSearchText,
  },
  {
    version: 5,
    name: 'embedding_queue',
    // Memories written without a vector (a slow or remote embedder, an open circuit, a model change)
    // wait here until the background embedder stores one: durable, so a restart resumes the backlog.
    sql: `
CREATE TABLE embedding_queue (rid INTEGER PRIMARY KEY REFERENCES memories (rid) ON DELETE CASCADE);
`,
  },
  {
    version: 6,
    name: 'idempotency_keys',
    // The Idempotency-Key of POST requests: the first response, replayed to retries until expires_at.
    sql: `
CREATE TABLE idempotency_keys (
  tenant_id TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('running', 'done')),
  status INTEGER,
  body TEXT,
  content_type TEXT,
  lease_until TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
`,
  },
  {
    version: 7,
    name: 'config',
    // Server-wide settings changed while Brain runs (maintenance_mode), shared by every process.
    sql: `
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
`,
  },
  {
    version: 8,
    name: 'security',
    // API keys (only their SHA-256 is kept), the audit log, and the slow-query log.
    sql: `
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  name TEXT,
  hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT,
  revoked_at TEXT,
  last_used_at TEXT
) WITHOUT ROWID;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  at TEXT NOT NULL,
  principal TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
  details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant_id, at);

CREATE TABLE query_log (
  id INTEGER PRIMARY KEY,
  sql TEXT NOT NULL,
  elapsed_ms REAL NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX query_log_created ON query_log (created_at);
`,
  },
  {
    // The scheduler's shared state (src/modules/jobs): one lease per job so a run happens once across
    // processes, the runs' history, and the runs that failed every retry.
    version: 9,
    name: 'jobs',
    sql: `
CREATE TABLE job_leases (
  job TEXT PRIMARY KEY,
  holder TEXT,
  acquired_at TEXT,
  expires_at TEXT,
  slot TEXT
) WITHOUT ROWID;

CREATE TABLE job_runs (
  id INTEGER PRIMARY KEY,
  job TEXT NOT NULL,
  holder TEXT NOT NULL,
  trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'retry')),
  attempts INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  duration_ms REAL NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'skipped')),
  message TEXT NOT NULL
);
CREATE INDEX job_runs_job ON job_runs (job, id);
CREATE INDEX job_runs_finished ON job_runs (finished_at);

CREATE TABLE dead_letter (
  id TEXT PRIMARY KEY,
  job TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  error TEXT NOT NULL,
  failed_at TEXT NOT NULL,
  retried_at TEXT,
  retry_outcome TEXT
) WITHOUT ROWID;
CREATE INDEX dead_letter_pending ON dead_letter (failed_at) WHERE retried_at IS NULL;
`,
  },
  {
    // Tiers (src/modules/memory/memory-tiers.ts): tier_access_count is access_count at the memory's last
    // tier change (promotion counts the recalls since), and tier_moves records every move with its reason.
    // No foreign key: memories rows are never deleted (a purge keeps a tombstone, and deletes its moves),
    // and checking one per recorded move cost a quarter of a 98,000-move rebalance.
    version: 10,
    name: 'tiers',
    sql: `
ALTER TABLE memories ADD COLUMN tier_access_count INTEGER NOT NULL DEFAULT 0;
CREATE TABLE tier_moves (
  id INTEGER PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  memory_id TEXT NOT NULL,
  from_tier TEXT NOT NULL,
  to_tier TEXT NOT NULL,
  reason TEXT NOT NULL,
  score REAL NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX tier_moves_memory ON tier_moves (memory_id, id);
`,
  },
  {
    // The episodic buffer (src/modules/episodes): each session's events in order (seq), their place
    // (buffered, evicted, consolidated) and the memory one was consolidated into.
    version: 11,
    name: 'episodes',
    sql: `
CREATE TABLE episodes (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  digest TEXT NOT NULL,
  occurred_at TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  importance REAL,
  metadata TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL DEFAULT 'buffered',
  memory_id TEXT,
  consolidation_reason TEXT,
  reviewed INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, session_id, seq)
) WITHOUT ROWID;
CREATE INDEX episodes_state ON episodes (tenant_id, session_id, state, seq);
CREATE INDEX episodes_digest ON episodes (tenant_id, session_id, digest);
CREATE INDEX episodes_memory ON episodes (tenant_id, memory_id) WHERE memory_id IS NOT NULL;
`,
  },
  {
    // Versions (src/modules/memory/memory-versions.ts): every state of a memory that an update or a keyed
    // write replaced, with when it was recorded (recorded_from .. recorded_to, the store's time) and the
    // fact's own validity (valid_from .. valid_to); the live row is the newest version. `as_of` reads them.
    version: 12,
    name: 'versions',
    sql: `
CREATE TABLE memory_versions (
  tenant_id TEXT NOT NULL,
  memory_id TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  content TEXT NOT NULL,
  type TEXT NOT NULL,
  tags TEXT NOT NULL,
  metadata TEXT NOT NULL,
  importance REAL NOT NULL,
  valid_from TEXT,
  valid_to TEXT,
  recorded_from TEXT NOT NULL,
  recorded_to TEXT NOT NULL,
  change TEXT NOT NULL,
  PRIMARY KEY (tenant_id, memory_id, version)
) WITHOUT ROWID;
-- as_of reads the states held at an instant: those replaced after it, newest first.
CREATE INDEX memory_versions_recorded ON memory_versions (tenant_id, recorded_to);
-- The ttl job's scan: memories whose expires_at has passed, oldest first.
CREATE INDEX memories_expiry ON memories (tenant_id, expires_at) WHERE expires_at IS NOT NULL AND deleted_at IS NULL;
`,
  },
  {
    // Executions (src/modules/execution/execution-store.ts): the queue of sandboxed Python runs and the
    // workers that claim them. files and output_files are JSON text; the flags are 0 or 1.
    version: 13,
    name: 'executions',
    sql: `
CREATE TABLE executions (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  principal TEXT NOT NULL,
  code TEXT NOT NULL,
  files TEXT NOT NULL DEFAULT '[]',
  status TEXT NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled')),
  exit_code INTEGER,
  signal TEXT,
  cpu_time_ms REAL,
  wall_ms REAL,
  stdout TEXT NOT NULL DEFAULT '',
  stderr TEXT NOT NULL DEFAULT '',
  stdout_truncated INTEGER NOT NULL DEFAULT 0,
  stderr_truncated INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  output_files TEXT NOT NULL DEFAULT '[]',
  error TEXT,
  timeout_ms INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  worker_id TEXT,
  lease_expires_at TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0
);
-- The queue: the oldest queued run first.
CREATE INDEX executions_queue ON executions (created_at, id) WHERE status = 'queued';
-- The reaper's scan: running runs by when their lease ends.
CREATE INDEX executions_leases ON executions (lease_expires_at) WHERE status = 'running';
-- A tenant's runs, newest first (ids sort by creation time).
CREATE INDEX executions_tenant ON executions (tenant_id, id);
-- Pruning: finished runs by when they ended.
CREATE INDEX executions_finished ON executions (finished_at)
  WHERE status IN ('succeeded', 'failed', 'timed_out', 'cancelled');

CREATE TABLE execution_workers (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('idle', 'busy', 'stopping')),
  execution_id TEXT
);
`,
  },
  {
    // A memory's last move in its own row (sqlite-tier-store.ts), its earlier ones in tier_moves: a move
    // rewrites the memory's row anyway, and recording it as a row of its own cost ~0.35 s of a first
    // rebalance's 98,000 moves. Its reason is a number in tier_reasons (every demotion of a plan shares
    // one; the text in each row would have grown the memories table by a third). The move before is
    // copied into tier_moves when the memory moves again; the moves recorded before stay there.
    // brain_meta's tier_version counts the plans that moved something: moves change no change_seq, and
    // the recall cache of every process on the file compares it (it was tier_moves' highest id).
    version: 14,
    name: 'tier_last_move',
    sql: `
ALTER TABLE memories ADD COLUMN moved_from TEXT;
ALTER TABLE memories ADD COLUMN moved_reason INTEGER;
ALTER TABLE memories ADD COLUMN moved_score REAL;
ALTER TABLE memories ADD COLUMN moved_at TEXT;
CREATE TABLE tier_reasons (id INTEGER PRIMARY KEY, reason TEXT NOT NULL UNIQUE);
INSERT INTO brain_meta (key, value) SELECT 'tier_version', coalesce(max(id), 0) FROM tier_moves;
`,
  },
  {
    // Each token in the index carries its tenant's mark (tenantMark in sqlite-search-text.ts), so that
    // a search counts its terms and takes its matches among the tenant's rows: counted over every
    // tenant, another tenant's rows decided which terms a query kept, their IDF and its short list.
    version: 15,
    name: 'fts_tenant',
    sql: '',
    backfill: markIndexedTokens,
  },
  {
    // A superseded memory (remember's supersedes) steps aside from keys and dedupe: a keyed write or the
    // same content written again makes a memory of its own, never lands on the one recall hides.
    version: 16,
    name: 'superseded_step_aside',
    sql: `
DROP INDEX memories_key;
CREATE UNIQUE INDEX memories_key ON memories (tenant_id, coalesce(project, ''), key)
  WHERE key IS NOT NULL AND deleted_at IS NULL AND superseded_by IS NULL;
DROP INDEX memories_hash;
CREATE INDEX memories_hash ON memories (tenant_id, coalesce(project, ''), content_hash)
  WHERE deleted_at IS NULL AND superseded_by IS NULL;
`,
  },
  {
    // Dedupe of rewordings (content-hash.ts, rewordedHash): the same words in another order, or with
    // other articles or edge punctuation, reinforce the memory that has them (an unkeyed live one).
    version: 17,
    name: 'reworded_hash',
    sql: `
ALTER TABLE memories ADD COLUMN reworded_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX memories_reworded ON memories (tenant_id, coalesce(project, ''), reworded_hash)
  WHERE key IS NULL AND deleted_at IS NULL AND superseded_by IS NULL AND reworded_hash <> '';
`,
    backfill: backfillRewordedHashes,
  },
];

/** Every stored memory's reworded hash, from its content (a purged one keeps ''), a page at a time. */
function backfillRewordedHashes(db: SqliteDatabase): void {
  const page = db.prepare(
    "SELECT rid, content FROM memories WHERE rid > ? AND content <> '' ORDER BY rid LIMIT 2000",
  );
  const update = db.prepare('UPDATE memories SET reworded_hash = ? WHERE rid = ?');
  for (let after = 0; ; ) {
    const rows = page.all(after) as { rid: number; content: string }[];
    if (rows.length === 0) return;
    for (const row of rows) update.run(rewordedHash(row.content), row.rid);
    after = (rows.at(-1) as { rid: number }).rid;
  }
}

export interface MigrationReport {
  applied: string[];
  current: number;
}

function currentVersion(db: SqliteDatabase): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/** The schema version the database is at, and the newest this build knows. */
export function migrationStatus(db: SqliteDatabase): { current: number; latest: number } {
  const latest = SQLITE_MIGRATIONS.at(-1)?.version ?? 0;
  return { current: currentVersion(db), latest };
}

/**
 * Applies every pending migration. Each runs in an IMMEDIATE transaction that re-reads the version,
 * so two processes starting at once on one file apply each migration exactly once.
 */
export function migrateSqlite(
  db: SqliteDatabase,
  now: () => string = () => new Date().toISOString(),
): MigrationReport {
  const applied: string[] = [];
  for (const migration of SQLITE_MIGRATIONS) {
    const apply = db.transaction(() => {
      if (currentVersion(db) >= migration.version) return;
      db.exec(migration.sql);
      migration.backfill?.(db);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.name,
        now(),
      );
      applied.push(`${migration.version}_${migration.name}`);
    });
    apply.immediate();
  }
  return { applied, current: currentVersion(db) };
}
