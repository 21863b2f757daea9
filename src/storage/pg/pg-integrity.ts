import type pg from 'pg';
import { ownSearchText, speakerSearchText } from '../sqlite/sqlite-search-text.js';
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
import { renewEveryToken } from './pg-change-versions.js';
import type { PgDatabase } from './pg-database.js';
import { PG_MEMORY_FROM } from './pg-memory-rows.js';

const BATCH = 1000;
const QUOTED = 5;

/** The context SQL every session's rows should hold: the own tokens of the live rows before and after. */
const EXPECTED_CONTEXT = `trim(coalesce(lag(search_text) OVER w, '') || ' ' || coalesce(lead(search_text) OVER w, ''))`;

/** memory_terms summed per tenant and term, beside the same counted from the live rows: rows that differ. */
const TERM_DIFFERENCES = `
  WITH kept AS (
    SELECT tenant_id, term, sum(docs) AS docs, sum(own_chars) AS own, sum(context_chars) AS ctx
    FROM memory_terms GROUP BY tenant_id, term HAVING sum(docs) <> 0 OR sum(own_chars) <> 0 OR sum(context_chars) <> 0),
  counted AS (
    SELECT tenant_id, '' AS term, count(*) AS docs, sum(length(search_text)) AS own, sum(length(context_text)) AS ctx
    FROM memories WHERE deleted_at IS NULL GROUP BY tenant_id
    UNION ALL
    SELECT m.tenant_id, u.lexeme, count(*), 0, 0 FROM memories m, unnest(m.search_tsv) u
    WHERE m.deleted_at IS NULL GROUP BY m.tenant_id, u.lexeme)
  SELECT count(*) AS n, count(DISTINCT coalesce(k.tenant_id, c.tenant_id)) AS tenants
  FROM kept k FULL JOIN counted c ON c.tenant_id = k.tenant_id AND c.term = k.term
  WHERE k.docs IS DISTINCT FROM c.docs OR k.own IS DISTINCT FROM c.own OR k.ctx IS DISTINCT FROM c.ctx`;

/** Migration 6's statistics, counted again from the rows (the table emptied first). */
const REBUILD_TERMS = `
  DELETE FROM memory_terms;
  INSERT INTO memory_terms (tenant_id, term, docs, own_chars, context_chars)
  SELECT tenant_id, '', count(*), sum(length(search_text)), sum(length(context_text))
  FROM memories WHERE deleted_at IS NULL GROUP BY tenant_id;
  INSERT INTO memory_terms (tenant_id, term, docs)
  SELECT m.tenant_id, u.lexeme, count(*) FROM memories m, unnest(m.search_tsv) u
  WHERE m.deleted_at IS NULL GROUP BY m.tenant_id, u.lexeme;`;

const n = (value: unknown) => Number(value ?? 0);

async function guarded(
  name: string,
  run: () => Promise<Omit<IntegrityCheck, 'name'>>,
): Promise<IntegrityCheck> {
  try {
    return { name, ...(await run()) };
  } catch (error) {
    return {
      name,
      status: 'fail',
      message: `could not run: ${error instanceof Error ? error.message : String(error)}`,
      fix: 'brain db reindex, or restore the newest backup',
    };
  }
}

interface PgRow {
  rid: string;
  content: string;
  tags: string[];
  metadata: Record<string, unknown>;
  search_text: string;
  speaker_text: string;
}

/** Every live row's own and speaker tokens as its text gives them now, a batch at a time in rid order. */
async function* liveTokens(
  q: pg.Pool | pg.PoolClient,
): AsyncGenerator<{ rid: string; own: string; speaker: string; stale: boolean }[]> {
  let after = '0';
  for (;;) {
    const { rows } = await q.query<PgRow>(
      `SELECT rid::text AS rid, content, tags, metadata, search_text, speaker_text FROM memories
       WHERE deleted_at IS NULL AND rid > $1::bigint ORDER BY rid LIMIT ${BATCH}`,
      [after],
    );
    if (rows.length === 0) return;
    after = (rows.at(-1) as PgRow).rid;
    yield rows.map((r) => {
      const own = ownSearchText(r.content, r.tags);
      const speaker = speakerSearchText(r.content, r.metadata);
      return { rid: r.rid, own, speaker, stale: own !== r.search_text || speaker !== r.speaker_text };
    });
  }
}

/** amcheck's b-tree and heap checks over Brain's tables, when the extension is installed. */
async function amcheck(db: PgDatabase): Promise<Omit<IntegrityCheck, 'name'>> {
  const installed = await db.query<{ v: string }>(
    "SELECT extversion AS v FROM pg_extension WHERE extname = 'amcheck'",
    [],
    db.primary,
  );
  if (installed.rows.length === 0)
    return {
      status: 'skipped',
      message:
        'amcheck is not installed in this database, so PostgreSQL’s own page and index check was not run',
      fix: 'as a superuser: CREATE EXTENSION amcheck; then brain db check again',
    };
  const { rows: indexes } = await db.query<{ name: string }>(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
       JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND a.amname = 'btree' AND i.indisvalid AND i.indisready`,
    [],
    db.primary,
  );
  const problems: string[] = [];
  for (const index of indexes) {
    try {
      await db.query('SELECT bt_index_check($1::regclass, true)', [index.name], db.primary);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '42501')
        return {
          status: 'skipped',
          message: 'amcheck is installed but this role may not run it, so it was not run',
          fix: 'GRANT EXECUTE ON FUNCTION bt_index_check(regclass, boolean) TO the Brain role, or run brain db check as a superuser',
        };
      problems.push(`${index.name}: ${(error as Error).message}`);
    }
  }
  const heap = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace,
       LATERAL verify_heapam(c.oid) WHERE s.nspname = current_schema() AND c.relkind = 'r'`,
    [],
    db.primary,
  );
  if (n(heap.rows[0]?.n) > 0) problems.push(`${heap.rows[0]?.n} damaged heap tuple(s) (verify_heapam)`);
  if (problems.length === 0)
    return {
      status: 'ok',
      message: `amcheck: ${indexes.length} b-tree indexes and every table's heap are sound`,
    };
  return {
    status: 'fail',
    message: `amcheck found damage: ${problems.slice(0, QUOTED).join('; ')}`,
    fix: 'restore the newest backup (brain restore), or REINDEX the damaged index',
  };
}

async function foreignKeys(db: PgDatabase): Promise<Omit<IntegrityCheck, 'name'>> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT conname AS name FROM pg_constraint c JOIN pg_namespace s ON s.oid = c.connamespace
     WHERE s.nspname = current_schema() AND c.contype = 'f' AND NOT c.convalidated`,
    [],
    db.primary,
  );
  if (rows.length === 0)
    return { status: 'ok', message: 'every foreign key is enforced and validated by PostgreSQL' };
  return {
    status: 'fail',
    message: `foreign keys not validated: ${rows.map((r) => r.name).join(', ')}`,
    fix: 'ALTER TABLE … VALIDATE CONSTRAINT for each',
  };
}

async function textIndex(db: PgDatabase): Promise<Omit<IntegrityCheck, 'name'>> {
  const { rows } = await db.query<{ live: string; wrong: string }>(
    `SELECT count(*) AS live, count(*) FILTER (WHERE search_tsv IS NULL OR search_tsv IS DISTINCT FROM
       (setweight(to_tsvector('simple', search_text), 'A') || setweight(to_tsvector('simple', context_text), 'B'))) AS wrong
     FROM memories WHERE deleted_at IS NULL`,
    [],
    db.primary,
  );
  const live = n(rows[0]?.live);
  const wrong = n(rows[0]?.wrong);
  if (wrong === 0)
    return { status: 'ok', message: `${live} live memories, each with its tsvector in step with its tokens` };
  return {
    status: 'fail',
    message: `${wrong} of ${live} live memories hold a tsvector their tokens do not give`,
    fix: 'brain db reindex',
  };
}

async function textTokens(db: PgDatabase): Promise<Omit<IntegrityCheck, 'name'>> {
  let checked = 0;
  let stale = 0;
  for await (const batch of liveTokens(db.primary)) {
    checked += batch.length;
    stale += batch.filter((r) => r.stale).length;
  }
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT context_text, ${EXPECTED_CONTEXT} AS ctx FROM memories
       WHERE session_id IS NOT NULL AND deleted_at IS NULL WINDOW w AS (PARTITION BY tenant_id, session_id ORDER BY rid)) s
     WHERE s.context_text <> s.ctx`,
    [],
    db.primary,
  );
  const contexts = n(rows[0]?.n);
  if (stale === 0 && contexts === 0)
    return { status: 'ok', message: `${checked} memories' search tokens match their text` };
  return {
    status: 'fail',
    message: `${stale} of ${checked} live memories hold search tokens their text no longer gives, ${contexts} a stale session context`,
    fix: 'brain db reindex',
  };
}

async function textStatistics(db: PgDatabase): Promise<Omit<IntegrityCheck, 'name'>> {
  const { rows } = await db.query<{ n: string; tenants: string }>(TERM_DIFFERENCES, [], db.primary);
  const wrong = n(rows[0]?.n);
  if (wrong === 0) return { status: 'ok', message: 'memory_terms equals the counts of the live rows' };
  return {
    status: 'fail',
    message: `memory_terms differs from the live rows for ${wrong} term(s) of ${rows[0]?.tenants} tenant(s)`,
    fix: 'brain db reindex',
  };
}

async function vectors(db: PgDatabase): Promise<Omit<IntegrityCheck, 'name'>> {
  const { rows } = await db.query<Record<string, string>>(
    `SELECT
       (SELECT count(*) FROM memory_embeddings) AS vectors,
       (SELECT count(*) FROM memory_embeddings e JOIN memories m ON m.rid = e.rid WHERE m.tenant_id <> e.tenant_id) AS tenant,
       (SELECT count(*) FROM memory_embeddings WHERE dims <> vector_dims(embedding)) AS dims,
       (SELECT count(*) FROM memory_embeddings e JOIN memories m ON m.rid = e.rid WHERE m.content_hash = '') AS purged,
       (SELECT count(*) FROM memory_embeddings WHERE fresh) AS fresh,
       (SELECT count(*) FROM embedding_queue) AS queued`,
    [],
    db.primary,
  );
  const r = rows[0] ?? {};
  const { rows: invalid } = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relname LIKE 'memory_embeddings_hnsw_%' AND NOT i.indisvalid`,
    [],
    db.primary,
  );
  const info = `${n(r.vectors)} vectors (${n(r.fresh)} not yet in the HNSW index), ${n(r.queued)} memories waiting in the embedding queue`;
  const problems = [
    n(r.tenant) > 0 ? `${r.tenant} vectors filed under another tenant than their memory` : '',
    n(r.dims) > 0 ? `${r.dims} vectors whose dims column disagrees with the vector` : '',
    n(r.purged) > 0 ? `${r.purged} vectors of purged memories` : '',
    invalid.length > 0
      ? `invalid HNSW index(es) ${invalid.map((i) => i.name).join(', ')} (a failed build)`
      : '',
  ].filter((p) => p.length > 0);
  if (problems.length === 0) return { status: 'ok', message: info };
  return { status: 'fail', message: `${problems.join(', ')}; ${info}`, fix: 'brain db reindex' };
}

/**
 * Runs `work` on a connection of its own without BRAIN_DATABASE_STATEMENT_TIMEOUT_MS: VACUUM, REINDEX and
 * the rebuild take as long as the store is large, and a request's timeout must not cancel them.
 */
async function unbounded<T>(db: PgDatabase, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.primary.connect();
  try {
    await client.query('SET statement_timeout = 0');
    return await work(client);
  } finally {
    await client.query('RESET statement_timeout').catch(() => undefined);
    client.release();
  }
}

/** Whether the error is PostgreSQL's "permission denied" (42501). */
const denied = (error: unknown) => (error as { code?: string }).code === '42501';

/** Consistency checks and upkeep of the PostgreSQL store; engine damage is amcheck's to find. */
export function pgIntegrity(db: PgDatabase): StorageIntegrity {
  const size = async () =>
    n(
      (await db.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n', [], db.primary))
        .rows[0]?.n,
    );
  const maintenance = async (
    operation: MaintenanceResult['operation'],
    sql: string,
    message: string,
  ): Promise<MaintenanceResult> => {
    const started = performance.now();
    const bytesBefore = await size();
    await unbounded(db, (client) => client.query(sql));
    return {
      operation,
      ran: true,
      message,
      seconds: (performance.now() - started) / 1000,
      bytesBefore,
      bytesAfter: await size(),
    };
  };
  return {
    async check(options = {}): Promise<IntegrityReport> {
      const started = performance.now();
      const checks: IntegrityCheck[] = [];
      if (options.quick) {
        checks.push(await guarded('vectors', () => vectors(db)));
      } else {
        for (const [name, run] of [
          ['amcheck', amcheck],
          ['foreign_keys', foreignKeys],
          ['text_index', textIndex],
          ['text_tokens', textTokens],
          ['text_statistics', textStatistics],
          ['vectors', vectors],
        ] as const)
          checks.push(await guarded(name, () => run(db)));
      }
      return {
        engine: 'postgres',
        location: db.where,
        ok: checks.every((c) => c.status !== 'fail'),
        checks,
        seconds: (performance.now() - started) / 1000,
      };
    },
    vacuum: () =>
      maintenance(
        'vacuum-analyze',
        'VACUUM (ANALYZE)',
        `VACUUM ANALYZE of ${db.where}: dead rows reclaimed, statistics refreshed`,
      ),
    analyze: () =>
      maintenance('analyze', 'ANALYZE', `ANALYZE refreshed the planner's statistics of ${db.where}`),
    async checkpoint(): Promise<CheckpointResult> {
      try {
        await db.query('CHECKPOINT', [], db.primary);
        return {
          ran: true,
          busy: false,
          logPages: 0,
          checkpointedPages: 0,
          message: `CHECKPOINT done on ${db.where}`,
        };
      } catch (error) {
        if (!denied(error)) throw error;
        return {
          ran: false,
          busy: false,
          logPages: 0,
          checkpointedPages: 0,
          message:
            'CHECKPOINT needs a superuser (or the pg_checkpoint role, PostgreSQL 15+); PostgreSQL checkpoints by itself every checkpoint_timeout, so nothing is lost by skipping it',
        };
      }
    },
    reindex: (onProgress) => reindexPg(db, onProgress),
    async activity(since: string): Promise<StoreActivity> {
      const groups = async (column: string) =>
        Object.fromEntries(
          (
            await db.query<{ k: string; n: string }>(
              `SELECT ${column} AS k, count(*) AS n FROM ${PG_MEMORY_FROM} WHERE m.deleted_at IS NULL
               GROUP BY 1 ORDER BY 2 DESC`,
            )
          ).rows.map((r) => [r.k, n(r.n)]),
        );
      const { rows } = await db.query<Record<string, string>>(
        `SELECT (SELECT count(*) FROM memories WHERE deleted_at IS NULL) AS live,
           (SELECT count(*) FROM memories WHERE deleted_at IS NOT NULL) AS forgotten,
           (SELECT count(*) FROM sessions) AS sessions,
           (SELECT count(*) FROM sessions WHERE last_seen_at >= $1) AS active`,
        [since],
      );
      const r = rows[0] ?? {};
      return {
        memories: {
          live: n(r.live),
          forgotten: n(r.forgotten),
          byType: await groups('m.type'),
          byTier: await groups("coalesce(mt.storage_tier, 'hot')"),
        },
        sessions: { total: n(r.sessions), activeSince: n(r.active) },
      };
    },
  };
}

/**
 * `brain db reindex` on PostgreSQL, in one transaction holding writes off `memories` (reads go on):
 * every live row's tokens computed again where they differ, every session's contexts, memory_terms
 * counted again from the rows, vectors that disagree with their memory removed (their memories queued
 * again), invalid HNSW indexes dropped (rebuilt at the next start), then REINDEX of the tables.
 */
async function reindexPg(db: PgDatabase, onProgress?: ProgressListener): Promise<ReindexResult> {
  const started = performance.now();
  const total = n(
    (
      await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM memories WHERE deleted_at IS NULL',
        [],
        db.primary,
      )
    ).rows[0]?.n,
  );
  const result = await db.transaction(async (client) => {
    await client.query('SET LOCAL statement_timeout = 0');
    // Self-exclusive and excluding writers: two reindexes queue, writes wait, reads go on.
    await client.query('LOCK TABLE memories IN SHARE ROW EXCLUSIVE MODE');
    await client.query('LOCK TABLE memory_terms IN EXCLUSIVE MODE');
    let done = 0;
    onProgress?.(0, total);
    for await (const batch of liveTokens(client)) {
      const stale = batch.filter((r) => r.stale);
      if (stale.length > 0)
        await client.query(
          `UPDATE memories m SET search_text = x.own, speaker_text = x.speaker
           FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(rid, own, speaker) WHERE m.rid = x.rid`,
          [stale.map((r) => r.rid), stale.map((r) => r.own), stale.map((r) => r.speaker)],
        );
      done += batch.length;
      onProgress?.(Math.min(done, total), total);
    }
    await client.query(
      `WITH s AS (SELECT rid, ${EXPECTED_CONTEXT} AS ctx FROM memories WHERE session_id IS NOT NULL AND deleted_at IS NULL
         WINDOW w AS (PARTITION BY tenant_id, session_id ORDER BY rid))
       UPDATE memories m SET context_text = s.ctx FROM s WHERE m.rid = s.rid AND m.context_text <> s.ctx`,
    );
    await client.query(REBUILD_TERMS);
    const removed = await client.query<{ rid: string; live: boolean }>(
      `DELETE FROM memory_embeddings e USING memories m WHERE m.rid = e.rid
         AND (m.tenant_id <> e.tenant_id OR e.dims <> vector_dims(e.embedding) OR m.content_hash = '')
       RETURNING e.rid::text AS rid, m.deleted_at IS NULL AS live`,
    );
    // A live memory whose vector was dropped gets a new one from the embedding queue.
    await client.query(
      'INSERT INTO embedding_queue (rid) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING',
      [removed.rows.filter((r) => r.live).map((r) => r.rid)],
    );
    const vectors = n(
      (await client.query<{ n: string }>('SELECT count(*) AS n FROM memory_embeddings')).rows[0]?.n,
    );
    // Every tenant's change token is new: no replica's recall cache answers from the index as it was.
    await client.query(renewEveryToken());
    return { memories: total, vectors, removedOrphans: removed.rowCount ?? 0 };
  });
  const { rows: invalid } = await db.query<{ name: string }>(
    `SELECT quote_ident(c.relname) AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relname LIKE 'memory_embeddings_hnsw_%' AND NOT i.indisvalid`,
    [],
    db.primary,
  );
  await unbounded(db, async (client) => {
    // An HNSW index left invalid by a failed build is never used: dropped, the next start builds it.
    for (const index of invalid) await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${index.name}`);
    // The text search's indexes (GIN and b-trees) rebuilt concurrently: reads and writes go on. The HNSW
    // graphs are left alone: rebuilding them costs minutes per 100,000 vectors and rows cannot drift there.
    for (const table of ['memories', 'memory_terms'])
      await client.query(`REINDEX TABLE CONCURRENTLY ${table}`);
  });
  return { ...result, removedIndexFiles: invalid.length, seconds: (performance.now() - started) / 1000 };
}
