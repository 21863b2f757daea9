import type pg from 'pg';
import { rewordedHash } from '../../modules/memory/content-hash.js';
import type { MigrationReport, SchemaStatus } from '../storage.js';
import type { PgDatabase } from './pg-database.js';

interface Migration {
  version: number;
  name: string;
  sql: string;
  /** Rows the SQL cannot compute (a JS function of their content), in the migration's transaction. */
  backfill?: (client: pg.PoolClient) => Promise<void>;
}

/** The advisory lock key under which migrations run: one replica migrates, the others wait, then skip. */
const MIGRATION_LOCK = 0x62726169; // 'brai'

/**
 * The PostgreSQL schema, versioned like SQLite's. Times are ISO 8601 UTC text, as on SQLite, so that they
 * round-trip exactly and compare in order. search_tsv indexes the store's own search tokens (the same
 * searchTokens as SQLite, already stemmed, hence the 'simple' configuration): own text weight A, the
 * session context weight B. Vectors keep their model's dimension in `dims`; an HNSW index per model and
 * dimension is created on demand (pg-vector-search.ts).
 */
export const PG_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'memories',
    sql: `
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE memories (
  rid bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  tenant_id text NOT NULL,
  project text,
  session_id text,
  key text,
  content text NOT NULL,
  content_hash text NOT NULL,
  type text NOT NULL DEFAULT 'fact',
  tags text[] NOT NULL DEFAULT '{}',
  metadata jsonb NOT NULL DEFAULT '{}',
  importance double precision NOT NULL DEFAULT 0.5,
  storage_tier text NOT NULL DEFAULT 'hot' CHECK (storage_tier IN ('hot', 'warm', 'cold')),
  memory_score double precision NOT NULL DEFAULT 0.5,
  access_count integer NOT NULL DEFAULT 0,
  created_at text NOT NULL,
  updated_at text NOT NULL,
  accessed_at text,
  expires_at text,
  valid_from text,
  valid_to text,
  superseded_by text,
  deleted_at text,
  search_text text NOT NULL DEFAULT '',
  context_text text NOT NULL DEFAULT '',
  speaker_text text NOT NULL DEFAULT '',
  search_tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', search_text), 'A') || setweight(to_tsvector('simple', context_text), 'B')
  ) STORED
);
CREATE UNIQUE INDEX memories_key ON memories (tenant_id, coalesce(project, ''), key)
  WHERE key IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX memories_hash ON memories (tenant_id, coalesce(project, ''), content_hash)
  WHERE key IS NULL AND deleted_at IS NULL;
CREATE INDEX memories_tenant_created ON memories (tenant_id, created_at);
CREATE INDEX memories_project_created ON memories (tenant_id, project, created_at);
CREATE INDEX memories_session ON memories (tenant_id, session_id, rid) WHERE session_id IS NOT NULL;
CREATE INDEX memories_tags ON memories USING gin (tags);
CREATE INDEX memories_search ON memories USING gin (search_tsv);

CREATE TABLE memory_embeddings (
  rid bigint PRIMARY KEY REFERENCES memories (rid) ON DELETE CASCADE,
  tenant_id text NOT NULL,
  model text NOT NULL,
  dims integer NOT NULL,
  embedding vector NOT NULL
);
CREATE INDEX memory_embeddings_model ON memory_embeddings (tenant_id, model);

CREATE TABLE embedding_queue (
  rid bigint PRIMARY KEY REFERENCES memories (rid) ON DELETE CASCADE,
  leased_by text,
  leased_until timestamptz
);

CREATE TABLE sessions (
  tenant_id text NOT NULL,
  id text NOT NULL,
  project text,
  client text,
  created_at text NOT NULL,
  last_seen_at text NOT NULL,
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE brain_meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO brain_meta (key, value) VALUES ('instance_id', md5(random()::text || clock_timestamp()::text));
`,
  },
  {
    // Vectors are written fresh, outside the HNSW indexes, and moved into them in the background
    // (pg-vector-index.ts): a graph insertion costs about a millisecond, too much for the write path.
    // Rows already stored are in the graph; the indexes of version 1 (predicate without `fresh`) are
    // dropped, and the driver builds their successors concurrently on start.
    version: 2,
    name: 'fresh_vectors',
    sql: `
ALTER TABLE memory_embeddings ADD COLUMN fresh boolean NOT NULL DEFAULT false;
ALTER TABLE memory_embeddings ALTER COLUMN fresh SET DEFAULT true;
CREATE INDEX memory_embeddings_fresh ON memory_embeddings (tenant_id, model) WHERE fresh;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
    AND tablename = 'memory_embeddings' AND indexname LIKE 'memory_embeddings_hnsw_%'
  LOOP
    EXECUTE format('DROP INDEX %I', r.indexname);
  END LOOP;
END $$;
`,
  },
  {
    // The Idempotency-Key of POST requests, shared by every replica: the first response, replayed to
    // retries until expires_at.
    version: 3,
    name: 'idempotency_keys',
    sql: `
CREATE TABLE idempotency_keys (
  tenant_id text NOT NULL,
  key text NOT NULL,
  fingerprint text NOT NULL,
  state text NOT NULL CHECK (state IN ('running', 'done')),
  status integer,
  body text,
  content_type text,
  lease_until text NOT NULL,
  expires_at text NOT NULL,
  created_at text NOT NULL,
  PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
`,
  },
  {
    // Server-wide settings changed while Brain runs (maintenance_mode), read by every replica.
    version: 4,
    name: 'config',
    sql: `
CREATE TABLE config (key text PRIMARY KEY, value text NOT NULL, updated_at text NOT NULL);
`,
  },
  {
    // API keys (only their SHA-256 is kept), the audit log, and the slow-query log.
    version: 5,
    name: 'security',
    sql: `
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  name text,
  hash text NOT NULL UNIQUE,
  scopes text NOT NULL,
  created_at text NOT NULL,
  expires_at text,
  revoked_at text,
  last_used_at text
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE audit_events (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id text NOT NULL UNIQUE,
  at text NOT NULL,
  principal text NOT NULL,
  tenant_id text NOT NULL,
  action text NOT NULL,
  target text,
  outcome text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
  details text NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant_id, at);

CREATE TABLE query_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sql text NOT NULL,
  elapsed_ms double precision NOT NULL,
  created_at text NOT NULL
);
CREATE INDEX query_log_created ON query_log (created_at);
`,
  },
  {
    // Text statistics kept by the store instead of counted at query time (counting a common term's
    // matches through the GIN index took ~100 ms): for each tenant, the live documents holding each
    // lexeme of search_tsv, and under the empty term (never a lexeme) the live documents and the sums
    // of their own and context text lengths. Triggers on memories append signed deltas, one row per
    // tenant and term per statement, so concurrent writers never wait on each other's rows; readers sum
    // a term's rows, and fold them into one when they have grown (PgTextSearch).
    version: 6,
    name: 'text_statistics',
    sql: `
CREATE TABLE memory_terms (
  tenant_id text NOT NULL,
  term text NOT NULL,
  docs bigint NOT NULL,
  own_chars bigint NOT NULL DEFAULT 0,
  context_chars bigint NOT NULL DEFAULT 0
);
CREATE INDEX memory_terms_term ON memory_terms (tenant_id, term) INCLUDE (docs, own_chars, context_chars);

-- The rows a statement made live (+1) or took away (-1), as deltas per tenant and term.
CREATE FUNCTION brain_term_deltas_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memory_terms (tenant_id, term, docs, own_chars, context_chars)
  SELECT tenant_id, term, sum(docs), sum(own), sum(ctx) FROM (
    SELECT n.tenant_id, '' AS term, 1 AS docs, length(n.search_text) AS own, length(n.context_text) AS ctx
      FROM new_rows n WHERE n.deleted_at IS NULL
    UNION ALL
    SELECT n.tenant_id, u.lexeme, 1, 0, 0 FROM new_rows n, unnest(n.search_tsv) u WHERE n.deleted_at IS NULL
  ) d GROUP BY tenant_id, term;
  RETURN NULL;
END $$;

CREATE FUNCTION brain_term_deltas_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memory_terms (tenant_id, term, docs, own_chars, context_chars)
  SELECT tenant_id, term, sum(docs), sum(own), sum(ctx) FROM (
    SELECT o.tenant_id, '' AS term, -1 AS docs, -length(o.search_text) AS own, -length(o.context_text) AS ctx
      FROM old_rows o WHERE o.deleted_at IS NULL
    UNION ALL
    SELECT o.tenant_id, u.lexeme, -1, 0, 0 FROM old_rows o, unnest(o.search_tsv) u WHERE o.deleted_at IS NULL
  ) d GROUP BY tenant_id, term;
  RETURN NULL;
END $$;

-- Only rows whose text or liveness changed count (most updates touch access counts or tiers).
CREATE FUNCTION brain_term_deltas_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memory_terms (tenant_id, term, docs, own_chars, context_chars)
  SELECT tenant_id, term, sum(docs), sum(own), sum(ctx) FROM (
    WITH changed AS (
      SELECT o.tenant_id AS old_tenant, o.deleted_at IS NULL AS old_live, o.search_text AS old_text,
             o.context_text AS old_context, o.search_tsv AS old_tsv,
             n.tenant_id AS new_tenant, n.deleted_at IS NULL AS new_live, n.search_text AS new_text,
             n.context_text AS new_context, n.search_tsv AS new_tsv
      FROM old_rows o JOIN new_rows n ON n.rid = o.rid
      WHERE (o.deleted_at IS NULL) <> (n.deleted_at IS NULL) OR o.tenant_id <> n.tenant_id
         OR o.search_text <> n.search_text OR o.context_text <> n.context_text
    )
    SELECT old_tenant AS tenant_id, '' AS term, -1 AS docs, -length(old_text) AS own, -length(old_context) AS ctx
      FROM changed WHERE old_live
    UNION ALL
    SELECT old_tenant, u.lexeme, -1, 0, 0 FROM changed, unnest(old_tsv) u WHERE old_live
    UNION ALL
    SELECT new_tenant, '', 1, length(new_text), length(new_context) FROM changed WHERE new_live
    UNION ALL
    SELECT new_tenant, u.lexeme, 1, 0, 0 FROM changed, unnest(new_tsv) u WHERE new_live
  ) d GROUP BY tenant_id, term HAVING sum(docs) <> 0 OR sum(own) <> 0 OR sum(ctx) <> 0;
  RETURN NULL;
END $$;

CREATE TRIGGER memories_term_deltas_insert AFTER INSERT ON memories
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION brain_term_deltas_insert();
CREATE TRIGGER memories_term_deltas_delete AFTER DELETE ON memories
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION brain_term_deltas_delete();
CREATE TRIGGER memories_term_deltas_update AFTER UPDATE ON memories
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION brain_term_deltas_update();

-- The store as it stands.
INSERT INTO memory_terms (tenant_id, term, docs, own_chars, context_chars)
SELECT tenant_id, '', count(*), sum(length(search_text)), sum(length(context_text))
FROM memories WHERE deleted_at IS NULL GROUP BY tenant_id;
INSERT INTO memory_terms (tenant_id, term, docs)
SELECT m.tenant_id, u.lexeme, count(*) FROM memories m, unnest(m.search_tsv) u
WHERE m.deleted_at IS NULL GROUP BY m.tenant_id, u.lexeme;
`,
  },
  {
    // The scheduler's shared state (src/modules/jobs): one lease per job so a run happens once across
    // replicas, the runs' history, and the runs that failed every retry.
    version: 7,
    name: 'jobs',
    sql: `
CREATE TABLE job_leases (
  job text PRIMARY KEY,
  holder text,
  acquired_at text,
  expires_at text,
  slot text
);

CREATE TABLE job_runs (
  id bigserial PRIMARY KEY,
  job text NOT NULL,
  holder text NOT NULL,
  trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'retry')),
  attempts integer NOT NULL,
  started_at text NOT NULL,
  finished_at text NOT NULL,
  duration_ms double precision NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'skipped')),
  message text NOT NULL
);
CREATE INDEX job_runs_job ON job_runs (job, id);
CREATE INDEX job_runs_finished ON job_runs (finished_at);

CREATE TABLE dead_letter (
  id text PRIMARY KEY,
  job text NOT NULL,
  attempts integer NOT NULL,
  error text NOT NULL,
  failed_at text NOT NULL,
  retried_at text,
  retry_outcome text
);
CREATE INDEX dead_letter_pending ON dead_letter (failed_at) WHERE retried_at IS NULL;
`,
  },
  {
    // Tiers (src/modules/memory/memory-tiers.ts): tier_access_count is access_count at the memory's last
    // tier change (promotion counts the recalls since), and tier_moves records every move with its reason.
    // No foreign key: memories rows are never deleted (a purge keeps a tombstone, and deletes its moves),
    // and checking one per recorded move cost a quarter of a 98,000-move rebalance.
    version: 8,
    name: 'tiers',
    sql: `
ALTER TABLE memories ADD COLUMN tier_access_count integer NOT NULL DEFAULT 0;
CREATE TABLE tier_moves (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  memory_id text NOT NULL,
  from_tier text NOT NULL,
  to_tier text NOT NULL,
  reason text NOT NULL,
  score double precision NOT NULL,
  at text NOT NULL
);
CREATE INDEX tier_moves_memory ON tier_moves (memory_id, id);
`,
  },
  {
    // The episodic buffer (src/modules/episodes): each session's events in order (seq), their place
    // (buffered, evicted, consolidated) and the memory one was consolidated into.
    version: 9,
    name: 'episodes',
    sql: `
CREATE TABLE episodes (
  tenant_id text NOT NULL,
  id text NOT NULL,
  session_id text NOT NULL,
  seq integer NOT NULL,
  role text NOT NULL,
  content text NOT NULL,
  digest text NOT NULL,
  occurred_at text NOT NULL,
  recorded_at text NOT NULL,
  importance double precision,
  metadata jsonb NOT NULL DEFAULT '{}',
  state text NOT NULL DEFAULT 'buffered',
  memory_id text,
  consolidation_reason text,
  reviewed boolean NOT NULL DEFAULT false,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, session_id, seq)
);
CREATE INDEX episodes_state ON episodes (tenant_id, session_id, state, seq);
CREATE INDEX episodes_digest ON episodes (tenant_id, session_id, digest);
CREATE INDEX episodes_memory ON episodes (tenant_id, memory_id) WHERE memory_id IS NOT NULL;
`,
  },
  {
    // Versions (src/modules/memory/memory-versions.ts): every state of a memory that an update or a keyed
    // write replaced, with when it was recorded (recorded_from .. recorded_to, the store's time) and the
    // fact's own validity (valid_from .. valid_to); the live row is the newest version. `as_of` reads them.
    version: 10,
    name: 'versions',
    sql: `
CREATE TABLE memory_versions (
  tenant_id text NOT NULL,
  memory_id text NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
  version integer NOT NULL,
  content text NOT NULL,
  type text NOT NULL,
  tags text[] NOT NULL,
  metadata jsonb NOT NULL,
  importance double precision NOT NULL,
  valid_from text,
  valid_to text,
  recorded_from text NOT NULL,
  recorded_to text NOT NULL,
  change text NOT NULL,
  PRIMARY KEY (tenant_id, memory_id, version)
);
-- as_of reads the states held at an instant: those replaced after it, newest first.
CREATE INDEX memory_versions_recorded ON memory_versions (tenant_id, recorded_to);
-- The ttl job's scan: memories whose expires_at has passed, oldest first.
CREATE INDEX memories_expiry ON memories (tenant_id, expires_at) WHERE expires_at IS NOT NULL AND deleted_at IS NULL;
`,
  },
  {
    // Executions (src/modules/execution/execution-store.ts): the queue of sandboxed Python runs and the
    // workers that claim them. Times are ISO text, as in the scheduler's tables.
    version: 11,
    name: 'executions',
    sql: `
CREATE TABLE executions (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  principal text NOT NULL,
  code text NOT NULL,
  files jsonb NOT NULL DEFAULT '[]',
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled')),
  exit_code integer,
  signal text,
  cpu_time_ms double precision,
  wall_ms double precision,
  stdout text NOT NULL DEFAULT '',
  stderr text NOT NULL DEFAULT '',
  stdout_truncated boolean NOT NULL DEFAULT false,
  stderr_truncated boolean NOT NULL DEFAULT false,
  result text,
  output_files jsonb NOT NULL DEFAULT '[]',
  error text,
  timeout_ms integer NOT NULL,
  created_at text NOT NULL,
  started_at text,
  finished_at text,
  worker_id text,
  lease_expires_at text,
  attempts integer NOT NULL DEFAULT 0,
  cancel_requested boolean NOT NULL DEFAULT false
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
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  started_at text NOT NULL,
  heartbeat_at text NOT NULL,
  state text NOT NULL CHECK (state IN ('idle', 'busy', 'stopping')),
  execution_id text
);
`,
  },
  {
    // Tiers in a narrow table of their own (pg-memory-rows.ts): a rebalance rewrites these small rows,
    // not whole memories. On PostgreSQL an UPDATE writes a new version of the row and, with no room on
    // its page, an entry in each of the memories' ten indexes (both GINs included), and fires the text
    // statistics' trigger: 5 s for the 98,000 moves of a first rebalance, against under 1 s here. A
    // memory with no row is hot with the default score; fillfactor leaves room on each page so that a
    // row's next write is a heap-only update. No foreign key, as for tier_moves: memories rows are
    // never deleted. The partial index finds the cold rows that recall leaves out.
    version: 12,
    name: 'memory_tiers',
    sql: `
CREATE TABLE memory_tiers (
  rid bigint PRIMARY KEY,
  storage_tier text NOT NULL CHECK (storage_tier IN ('hot', 'warm', 'cold')),
  memory_score double precision NOT NULL,
  tier_access_count integer NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX memory_tiers_cold ON memory_tiers (rid) WHERE storage_tier = 'cold';
INSERT INTO memory_tiers (rid, storage_tier, memory_score, tier_access_count)
  SELECT rid, storage_tier, memory_score, tier_access_count FROM memories
  WHERE storage_tier <> 'hot' OR memory_score <> 0.5 OR tier_access_count <> 0;
ALTER TABLE memories DROP COLUMN storage_tier, DROP COLUMN memory_score, DROP COLUMN tier_access_count;
`,
  },
  {
    // tier_moves found by memory in one index, its primary key (memory_id, id), instead of a key on id
    // and an index on (memory_id, id): a first rebalance records ~98,000 moves, and each index entry is
    // a random insert (the id key served no query). memory_id compares bytewise (ids are ASCII): under
    // the database's locale every comparison of the index was a locale-aware one, ~20% of the insert.
    version: 13,
    name: 'tier_moves_by_memory',
    sql: `
ALTER TABLE tier_moves DROP CONSTRAINT tier_moves_pkey;
DROP INDEX tier_moves_memory;
ALTER TABLE tier_moves ALTER COLUMN memory_id TYPE text COLLATE "C";
ALTER TABLE tier_moves ADD PRIMARY KEY (memory_id, id);
`,
  },
  {
    // A memory's last move in its tier row (pg-tier-store.ts), its earlier ones in tier_moves: a move
    // writes the tier row anyway, and recording it as a row of its own was half of a first rebalance's
    // statement (98,000 heap rows and index entries). The move before is copied into tier_moves when the
    // memory moves again. The moves recorded before this migration stay in tier_moves.
    version: 14,
    name: 'tier_last_move',
    sql: `
ALTER TABLE memory_tiers ADD COLUMN moved_from text, ADD COLUMN moved_reason text,
  ADD COLUMN moved_score double precision, ADD COLUMN moved_at text;
`,
  },
  {
    // A last move's reason as a number in tier_reasons (as on SQLite): every demotion of a plan has the
    // same reason, and its ~85 characters in each of a first rebalance's 98,000 new tier rows were half
    // of each row, ~0.14 s of inserting them (27 → 19 MB of WAL).
    version: 15,
    name: 'tier_reasons',
    sql: `
CREATE TABLE tier_reasons (id serial PRIMARY KEY, reason text NOT NULL UNIQUE);
INSERT INTO tier_reasons (reason)
  SELECT DISTINCT moved_reason FROM memory_tiers WHERE moved_reason IS NOT NULL ORDER BY 1;
ALTER TABLE memory_tiers ADD COLUMN moved_reason_id integer;
UPDATE memory_tiers mt SET moved_reason_id = r.id FROM tier_reasons r WHERE r.reason = mt.moved_reason;
ALTER TABLE memory_tiers DROP COLUMN moved_reason;
ALTER TABLE memory_tiers RENAME COLUMN moved_reason_id TO moved_reason;
`,
  },
  {
    // Each tenant's change token (pg-change-versions.ts): replaced after every committed change of its
    // memories and read by recall's cache before it answers, so that no replica serves an answer made
    // before a write another replica has acknowledged (the change bus's notices come later than that).
    version: 16,
    name: 'memory_change_versions',
    sql: `
CREATE TABLE memory_change_versions (
  tenant_id text COLLATE "C" PRIMARY KEY,
  token text NOT NULL
);
`,
  },
  {
    // A superseded memory (remember's supersedes) steps aside from keys and dedupe: a keyed write or the
    // same content written again makes a memory of its own, never lands on the one recall hides.
    version: 17,
    name: 'superseded_step_aside',
    sql: `
DROP INDEX memories_key;
CREATE UNIQUE INDEX memories_key ON memories (tenant_id, coalesce(project, ''), key)
  WHERE key IS NOT NULL AND deleted_at IS NULL AND superseded_by IS NULL;
DROP INDEX memories_hash;
CREATE UNIQUE INDEX memories_hash ON memories (tenant_id, coalesce(project, ''), content_hash)
  WHERE key IS NULL AND deleted_at IS NULL AND superseded_by IS NULL;
`,
  },
  {
    // Dedupe of rewordings (content-hash.ts, rewordedHash): the same words in another order, or with
    // other articles or edge punctuation, reinforce the memory that has them (an unkeyed live one). Not
    // unique: two rewordings written at once on two connections may both stay.
    version: 18,
    name: 'reworded_hash',
    sql: `
ALTER TABLE memories ADD COLUMN reworded_hash text NOT NULL DEFAULT '';
CREATE INDEX memories_reworded ON memories (tenant_id, coalesce(project, ''), reworded_hash)
  WHERE key IS NULL AND deleted_at IS NULL AND superseded_by IS NULL AND reworded_hash <> '';
`,
    backfill: backfillRewordedHashes,
  },
];

/** Every stored memory's reworded hash, from its content (a purged one keeps ''), a page at a time. */
async function backfillRewordedHashes(client: pg.PoolClient): Promise<void> {
  for (let after = '0'; ; ) {
    const { rows } = await client.query<{ rid: string; content: string }>(
      "SELECT rid, content FROM memories WHERE rid > $1 AND content <> '' ORDER BY rid LIMIT 5000",
      [after],
    );
    if (rows.length === 0) return;
    await client.query(
      'UPDATE memories m SET reworded_hash = x.h FROM unnest($1::bigint[], $2::text[]) AS x(rid, h) WHERE m.rid = x.rid',
      [rows.map((r) => r.rid), rows.map((r) => rewordedHash(r.content))],
    );
    after = (rows.at(-1) as { rid: string }).rid;
  }
}

const ENSURE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;

export async function pgSchemaStatus(db: PgDatabase): Promise<SchemaStatus> {
  const latest = PG_MIGRATIONS.at(-1)?.version ?? 0;
  const exists = await db.query<{ t: string | null }>(
    "SELECT to_regclass('schema_migrations')::text AS t",
    [],
    db.primary,
  );
  if (!exists.rows[0]?.t) return { current: 0, latest };
  const row = await db.query<{ v: number | null }>(
    'SELECT max(version) AS v FROM schema_migrations',
    [],
    db.primary,
  );
  return { current: row.rows[0]?.v ?? 0, latest };
}

/**
 * Applies pending migrations in one transaction under a transaction-scoped advisory lock: replicas that
 * start together queue on the lock, and each re-reads the version once it holds it, so every migration
 * runs exactly once.
 */
export async function migratePostgres(db: PgDatabase): Promise<MigrationReport> {
  return db.transaction(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(ENSURE_TABLE);
    const { rows } = await client.query<{ v: number | null }>(
      'SELECT max(version) AS v FROM schema_migrations',
    );
    let current = rows[0]?.v ?? 0;
    const applied: string[] = [];
    for (const migration of PG_MIGRATIONS) {
      if (migration.version <= current) continue;
      await client.query(migration.sql);
      await migration.backfill?.(client);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(`${migration.version}_${migration.name}`);
      current = migration.version;
    }
    return { applied, current };
  });
}
