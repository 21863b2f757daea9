import type pg from 'pg';
import { invalidInput } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import { currentWriteAudit, type WriteAudit } from '../../modules/audit/write-audit.js';
import { legacyContentHash, rewordedHash } from '../../modules/memory/content-hash.js';
import { FILTER_FIELDS, hasFilterCondition } from '../../modules/memory/memory-filter.js';
import { MEMORY_LIMITS } from '../../modules/memory/memory-schemas.js';
import type {
  CandidateQuery,
  Candidates,
  ForgetTarget,
  ListQuery,
  MemoryPatch,
  MemoryStore,
  MemoryTarget,
  MemoryVersion,
  NewMemory,
  WriteOutcome,
} from '../../modules/memory/memory-store.js';
import type { Memory } from '../../modules/memory/memory-types.js';
import { supersedable } from '../../modules/memory/supersession.js';
import { episodesPurgedWith } from '../episode-forget.js';
import { reinforcement, replacedAttributes, statementAttributes } from '../memory-columns.js';
import { ownSearchText, speakerSearchText } from '../sqlite/sqlite-search-text.js';
import { auditColumns, auditInsertSql } from './pg-audit-store.js';
import type { ChangeBus } from './pg-change-bus.js';
import { PgChangeVersions, renewTokenWhen } from './pg-change-versions.js';
import type { PgDatabase } from './pg-database.js';
import {
  PG_MEMORY_COLUMNS,
  PG_MEMORY_FROM,
  type PgMemoryRow,
  pgLiveWhere,
  pgRowToMemory,
  vectorArrayBinary,
} from './pg-memory-rows.js';
import { PgTableStatistics } from './pg-table-statistics.js';
import { PgTextSearch } from './pg-text-search.js';
import { TIER_LOCK } from './pg-tier-store.js';
import { writeVectors } from './pg-vector-index.js';
import { PgVectorSearch } from './pg-vector-search.js';

const SORT_COLUMNS = new Set(['created_at', 'updated_at', 'accessed_at', 'importance', 'memory_score']);

const INSERT_COLUMNS = `id, tenant_id, project, session_id, key, content, content_hash, type, tags, metadata,
  importance, created_at, updated_at, expires_at, search_text, speaker_text, valid_from, valid_to, reworded_hash`;
/**
 * unnest() of one array per column: a whole batch (of one tenant, `$2[1]`) in one statement. A row is
 * held back for #conflicted (which checks again, exactly, and reinforces the holder) when a live memory
 * has its content under the legacy hash `lh`, when it looks for a rewording (`rl`) and a live one is
 * stored (live at the batch's earliest time: a superset, which #conflicted narrows), or when an earlier
 * row of the batch is one (`rs`).
 *
 * Each holder lookup is one uncorrelated subquery for the whole batch (hashed once), not one per row:
 * planned per row on a young table without statistics (see PgTableStatistics), PostgreSQL probed
 * `memories_hash` by tenant and project alone for the rewording, reading the project's every row for
 * each row of the batch (12.7 s for 1,000 rows into a project of 19,000). Once per batch, a plan that
 * bad costs one read of the project.
 */
const UNNEST = `(SELECT id, tn, pr, se, ke, co, ch, ty, tg::text[], me, im, cr, cr, ex, st, sp, vf, vt, rw
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::text[], $10::jsonb[], $11::float8[], $12::text[], $13::text[], $14::text[], $15::text[], $21::text[],
    $22::text[], $23::text[], $24::text[], $25::bool[], $26::bool[])
    AS x(id, tn, pr, se, ke, co, ch, ty, tg, me, im, cr, ex, st, sp, lh, vf, vt, rw, rl, rs)
  WHERE NOT rs
    AND (lh IS NULL OR (coalesce(pr, ''), lh) NOT IN (SELECT coalesce(o.project, ''), o.content_hash
      FROM memories o WHERE o.tenant_id = ($2::text[])[1] AND o.content_hash = ANY($21::text[])
        AND o.key IS NULL AND o.deleted_at IS NULL AND o.superseded_by IS NULL))
    AND NOT (rl AND (coalesce(pr, ''), rw) IN (SELECT coalesce(o.project, ''), o.reworded_hash
      FROM memories o WHERE o.tenant_id = ($2::text[])[1] AND o.reworded_hash = ANY($24::text[])
        AND o.key IS NULL AND o.deleted_at IS NULL AND o.superseded_by IS NULL AND o.reworded_hash <> ''
        AND (o.expires_at IS NULL OR o.expires_at > (SELECT min(c) FROM unnest($12::text[]) AS c))))) AS batch`;

/**
 * A batch's new rows, with their vectors (fresh: outside the HNSW graph, see pg-vector-index.ts) and
 * their queue entries, in one statement. Rows that meet a conflict are skipped, and so are their vectors
 * and entries (joined on the ids inserted); the caller resolves those one by one.
 */
const INSERT_NEW = `WITH ins AS (
    INSERT INTO memories (${INSERT_COLUMNS}) SELECT * FROM ${UNNEST} ON CONFLICT DO NOTHING RETURNING id, rid),
  vec AS (
    INSERT INTO memory_embeddings (rid, tenant_id, model, dims, embedding, fresh)
    SELECT ins.rid, ($2::text[])[1], v.mo, v.d, v.v, true
    FROM ins JOIN unnest($16::text[], $17::text[], $18::int[], $19::vector[]) AS v(id, mo, d, v) ON v.id = ins.id
    ON CONFLICT (rid) DO NOTHING),
  queued AS (
    INSERT INTO embedding_queue (rid)
    SELECT ins.rid FROM ins JOIN unnest($20::text[]) AS l(id) ON l.id = ins.id ON CONFLICT DO NOTHING)
  SELECT id, rid FROM ins`;

/**
 * {@link INSERT_NEW} for one memory outside a session that also gives its tenant a new change token
 * when the row went in (see pg-change-versions.ts): one statement and one commit for the commonest
 * write, where a separate replacement after it cost a second round trip. The token's row stays locked
 * until the commit, so it is used only by a write with no other of its tenant in flight here: writes side
 * by side would commit one at a time behind that lock (8 callers wrote 18% less), and they keep the
 * coalesced replacement instead.
 */
const INSERT_ONE_BUMPING = INSERT_NEW.replace(
  '\n  SELECT id, rid FROM ins',
  `,
  token AS (${renewTokenWhen('($2::text[])[1]', 'EXISTS (SELECT 1 FROM ins)')})
  SELECT id, rid FROM ins`,
);

/**
 * The two statements above that also append an audited write's event ($27-$34, see auditInsertSql)
 * when the row went in: the write and its event in one statement and one commit.
 */
const AUDITED = (sql: string) =>
  sql.replace(
    '\n  SELECT id, rid FROM ins',
    `,
  audited AS (${auditInsertSql(27, 'EXISTS (SELECT 1 FROM ins)')})
  SELECT id, rid FROM ins`,
  );

/**
 * The lone write's statement, named (PgDatabase.prepared): by whether it replaces the tenant's token
 * itself (alone in its tenant), then by whether it carries the audit event.
 */
const LONE_INSERTS = {
  beside: {
    plain: { name: 'brain_insert_new', text: INSERT_NEW },
    audited: { name: 'brain_insert_new_audited', text: AUDITED(INSERT_NEW) },
  },
  alone: {
    plain: { name: 'brain_insert_one_bumping', text: INSERT_ONE_BUMPING },
    audited: { name: 'brain_insert_one_bumping_audited', text: AUDITED(INSERT_ONE_BUMPING) },
  },
};

/**
 * Every session a batch touched gets its rows' contexts computed again from their live neighbours (the
 * own tokens of the memory before and after each, in write order), in one statement.
 */
const RECONTEXT = `WITH s AS (
    SELECT rid, trim(coalesce(lag(search_text) OVER w, '') || ' ' || coalesce(lead(search_text) OVER w, '')) AS ctx
    FROM memories WHERE tenant_id = $1 AND session_id = ANY($2::text[]) AND deleted_at IS NULL
    WINDOW w AS (PARTITION BY session_id ORDER BY rid))
  UPDATE memories m SET context_text = s.ctx FROM s WHERE m.rid = s.rid AND m.context_text <> s.ctx`;

type Row = PgMemoryRow;

/** Whether write `m` merges into a stored rewording (NewMemory.merge_reworded) whose hash is `reworded`. */
function rewordable(m: NewMemory, reworded: string): boolean {
  return m.merge_reworded === true && m.key === null && reworded !== '';
}

const VERSION_COLUMNS = `version, content, type, tags, metadata, importance, valid_from, valid_to, recorded_from,
  recorded_to, change`;

/**
 * Keeps the state of memory `rid` as a version row before a write replaces it, numbered after the last
 * one, held from the last replacement (or the memory's creation) until `at`. With `unlessSame` (a keyed
 * write): not when it leaves the content and every recorded attribute as they are (a plain repeat under
 * the key changes no statement). The caller holds the row's lock, so two writers never take one number.
 */
async function archiveVersion(
  client: pg.PoolClient,
  rid: string,
  at: string,
  change: MemoryVersion['change'],
  unlessSame?: NewMemory,
): Promise<void> {
  const params: unknown[] = [rid, at, change];
  let unless = '';
  if (unlessSame) {
    params.push(unlessSame.content_hash);
    unless = 'AND NOT (m.content_hash = $4';
    for (const { column, value } of statementAttributes(unlessSame)) {
      params.push(value);
      const cast = column === 'tags' ? '::text[]' : column === 'metadata' ? '::jsonb' : '';
      unless += ` AND m.${column} IS NOT DISTINCT FROM $${params.length}${cast}`;
    }
    unless += ')';
  }
  await client.query(
    `INSERT INTO memory_versions (tenant_id, memory_id, version, content, type, tags, metadata, importance,
       valid_from, valid_to, recorded_from, recorded_to, change)
     SELECT m.tenant_id, m.id, coalesce(v.n, 0) + 1, m.content, m.type, m.tags, m.metadata, m.importance,
       m.valid_from, m.valid_to, coalesce(v.last, m.created_at), $2, $3
     FROM memories m
     LEFT JOIN LATERAL (SELECT max(version) AS n, max(recorded_to) AS last FROM memory_versions
       WHERE tenant_id = m.tenant_id AND memory_id = m.id) v ON true
     WHERE m.rid = $1 ${unless}`,
    params,
  );
}

/**
 * The memory port on PostgreSQL. Every statement is filtered by tenant. Concurrency is the database's:
 * a batch is one transaction; keys and unkeyed content are unique among live rows by partial unique
 * indexes, so concurrent writers from several replicas meet `ON CONFLICT`, never a read-then-write race.
 */
export class PgMemoryStore implements MemoryStore {
  readonly #db: PgDatabase;
  readonly text: PgTextSearch;
  readonly vectors: PgVectorSearch;
  readonly #bus: ChangeBus;
  readonly #tokens: PgChangeVersions;
  /** The planner's statistics of `memories`, renewed as it grows (see PgTableStatistics). */
  readonly statistics: PgTableStatistics;
  readonly #touches = new Map<string, Map<string, { n: number; at: string }>>();
  #touchTimer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  /** This process's own count of each tenant's changes (see changeVersion). */
  readonly #versions = new Map<string, number>();
  #versionClock = 0;

  constructor(db: PgDatabase, logger: Logger, bus: ChangeBus) {
    this.#db = db;
    this.text = new PgTextSearch(db);
    this.vectors = new PgVectorSearch(db, logger);
    this.#bus = bus;
    this.#tokens = new PgChangeVersions(db, logger);
    this.statistics = new PgTableStatistics(db, logger, 'memories');
    bus.subscribe((tenantId) => this.invalidate(tenantId));
  }

  /**
   * Drops what this process's searches cache of a tenant ('*': of every tenant, after the bus missed
   * notices). Recall's cache goes by changeVersion instead.
   */
  invalidate(tenantId: string): void {
    this.text.invalidate(tenantId);
    this.vectors.invalidate(tenantId);
  }

  /**
   * The tenant's change token in the database, replaced after every replica's writes before they are
   * acknowledged, so that an answer cached here is never served after another replica's acknowledged
   * write (the bus's notices come later than that); and this process's own count of its changes of the
   * tenant, which holds even when a token could not be replaced. One primary-key read per recall.
   */
  async changeVersion(scope: RequestScope): Promise<string> {
    return `${await this.#tokens.read(scope.tenantId)}:${this.#versions.get(scope.tenantId) ?? 0}`;
  }

  /**
   * After committed changes of `tenants`' memories (that stored `vectors` fresh vectors): caches here,
   * the tenants' change tokens (waited for: the caller acknowledges the change after this), then a
   * notice to every replica.
   */
  async changed(tenants: string[], vectors = 0): Promise<void> {
    await this.#changedAll(tenants, vectors, true);
  }

  async #changedAll(tenants: string[], vectors: number, bump: boolean): Promise<void> {
    this.vectors.indexer.schedule(vectors);
    for (const t of tenants) {
      this.invalidate(t);
      this.#versions.set(t, ++this.#versionClock);
    }
    if (bump) await this.#tokens.bump(tenants);
    for (const t of tenants) await this.#bus.publish(t);
  }

  async #changed(tenantId: string, vectors = 0): Promise<void> {
    await this.changed([tenantId], vectors);
  }

  async insert(scope: RequestScope, memories: NewMemory[]): Promise<WriteOutcome[]> {
    if (memories.length === 0) return [];
    // The audited write this insert belongs to: its event goes in the write's own transaction.
    const audit = currentWriteAudit() ?? null;
    const outcomes = memories.some((m) => m.merge_into && m.key === null)
      ? await this.#insertMerging(scope, memories, audit)
      : await this.#insertAll(scope, memories, audit);
    this.statistics.wrote(outcomes.filter((o) => o.status === 'created').length);
    return outcomes;
  }

  /**
   * Runs a write's transaction with its audit event appended to it before the commit (WriteAudit), and
   * tells the event it was stored once the commit is done.
   */
  async #auditedTransaction(
    scope: RequestScope,
    audit: WriteAudit | null,
    work: (client: pg.PoolClient) => Promise<WriteOutcome[]>,
  ): Promise<WriteOutcome[]> {
    let audited = false;
    const outcomes = await this.#db.transaction(async (client) => {
      // A transaction retried whole (PgDatabase.transaction) takes the event again: the last try's is gone.
      if (audited) audit?.release();
      audited = false;
      const done = await work(client);
      const events = audit?.take(scope, done) ?? [];
      if (events.length > 0) await client.query(auditInsertSql(1), auditColumns(events));
      audited = events.length > 0;
      return done;
    });
    if (audited) audit?.committed();
    return outcomes;
  }

  /**
   * A batch with near-duplicates: each reinforces its `merge_into` if that is still live, and the rest
   * are inserted as usual, all in one transaction; outcomes in the batch's order.
   */
  async #insertMerging(
    scope: RequestScope,
    memories: NewMemory[],
    audit: WriteAudit | null,
  ): Promise<WriteOutcome[]> {
    const t = scope.tenantId;
    const outcomes = await this.#auditedTransaction(scope, audit, (client) =>
      this.#superseding(client, t, memories, () => this.#mergeBatch(client, t, memories)),
    );
    await this.#changed(t, memories.filter((m) => m.embedding).length);
    return outcomes;
  }

  /** #insertMerging's work in its transaction. */
  async #mergeBatch(client: pg.PoolClient, t: string, memories: NewMemory[]): Promise<WriteOutcome[]> {
    const out: (WriteOutcome | null)[] = [];
    for (const m of memories) {
      // Its exact duplicate or its rewording comes first, as on SQLite: #writeBatch reinforces that one.
      const merged =
        m.merge_into &&
        m.key === null &&
        !(await this.#heldByContent(client, t, m)) &&
        (await this.#reinforce(client, t, m.merge_into.id, m));
      out.push(
        merged && m.merge_into
          ? {
              id: m.merge_into.id,
              status: 'duplicate',
              deduplicated: 'similar',
              similarity: m.merge_into.similarity,
            }
          : null,
      );
    }
    const rest = memories.filter((_, i) => out[i] === null);
    const written = rest.length > 0 ? await this.#writeBatch(client, t, rest) : [];
    return out.map((o) => o ?? (written.shift() as WriteOutcome));
  }

  /** Whether a live unkeyed memory of `m`'s project holds its content, or a rewording of it when asked. */
  async #heldByContent(client: pg.PoolClient, t: string, m: NewMemory): Promise<boolean> {
    const reworded = rewordedHash(m.content);
    const { rows } = await client.query(
      `SELECT 1 FROM memories WHERE tenant_id = $1 AND coalesce(project, '') = $2 AND key IS NULL
         AND deleted_at IS NULL AND superseded_by IS NULL AND (expires_at IS NULL OR expires_at > $3)
         AND (content_hash = ANY($4::text[]) OR ($5 AND reworded_hash = $6 AND reworded_hash <> ''))
       LIMIT 1`,
      [
        t,
        m.project ?? '',
        m.created_at,
        [m.content_hash, legacyContentHash(m.content)],
        rewordable(m, reworded),
        reworded,
      ],
    );
    return rows.length > 0;
  }

  /**
   * Runs a batch's `write` in transaction `client` with its supersessions (NewMemory.supersedes): the
   * memories it names locked and checked first (so a batch that cannot supersede them writes nothing,
   * and two writers never supersede one memory both), then each superseded by what its write wrote.
   */
  async #superseding(
    client: pg.PoolClient,
    t: string,
    memories: NewMemory[],
    write: () => Promise<WriteOutcome[]>,
  ): Promise<WriteOutcome[]> {
    const rids: (string | undefined)[] = [];
    const named = new Set<string>();
    for (const m of memories) {
      if (!m.supersedes) {
        rids.push(undefined);
        continue;
      }
      const { rows } = await client.query<{ rid: string; superseded_by: string | null }>(
        `SELECT rid, superseded_by FROM memories WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
           AND (expires_at IS NULL OR expires_at > $3) FOR UPDATE`,
        [t, m.supersedes, m.created_at],
      );
      supersedable('supersedes', m.supersedes, rows[0]?.superseded_by, rows.length > 0, named);
      rids.push(rows[0]?.rid);
    }
    const outcomes = await write();
    for (const [i, m] of memories.entries()) {
      const rid = rids[i];
      const id = outcomes[i]?.id;
      if (rid === undefined || id === undefined || id === m.supersedes) continue;
      await archiveVersion(client, rid, m.created_at, 'superseded');
      const closeAt = m.valid_from ?? m.created_at;
      await client.query(
        `UPDATE memories SET superseded_by = $2, updated_at = $3,
           valid_to = CASE WHEN (valid_to IS NULL OR valid_to > $4) AND (valid_from IS NULL OR valid_from < $4)
             THEN $4 ELSE valid_to END
         WHERE rid = $1`,
        [rid, id, m.created_at, closeAt],
      );
    }
    return outcomes;
  }

  /** Single writes of each tenant in flight on the fast path: one alone bumps its token itself. */
  readonly #writing = new Map<string, number>();

  async #insertAll(
    scope: RequestScope,
    memories: NewMemory[],
    audit: WriteAudit | null,
  ): Promise<WriteOutcome[]> {
    const t = scope.tenantId;
    const params = await this.#insertParams(t, memories);
    const only = memories[0] as NewMemory;
    if (memories.length === 1 && only.session === null && !only.supersedes) {
      // Its event, for the outcome this statement can have (created); given back when it meets a conflict.
      const events = audit?.take(scope, [{ id: only.id, status: 'created' }]) ?? [];
      // One memory outside a session: one statement, its own transaction (one round trip, one commit).
      // When it meets a conflict it writes nothing, and the transaction below resolves the conflict.
      // Alone, it replaces the tenant's token in its own statement; beside other writes of the tenant
      // it leaves that to the coalesced replacement, which does not make them commit one at a time.
      const alone = !this.#writing.has(t);
      this.#writing.set(t, (this.#writing.get(t) ?? 0) + 1);
      let rows: { id: string; rid: string }[];
      try {
        const lone = LONE_INSERTS[alone ? 'alone' : 'beside'][events.length > 0 ? 'audited' : 'plain'];
        ({ rows } = await this.#db.prepared<{ id: string; rid: string }>(
          lone.name,
          lone.text,
          events.length > 0 ? [...params, ...auditColumns(events)] : params,
          this.#db.primary,
        ));
      } catch (error) {
        if (events.length > 0) audit?.release();
        throw error;
      } finally {
        const n = (this.#writing.get(t) ?? 1) - 1;
        if (n > 0) this.#writing.set(t, n);
        else this.#writing.delete(t);
      }
      if (rows.length === 1) {
        if (events.length > 0) audit?.committed();
        await this.#changedAll([t], only.embedding ? 1 : 0, !alone);
        return [{ id: only.id, status: 'created' }];
      }
      if (events.length > 0) audit?.release();
    }
    const outcomes = await this.#auditedTransaction(scope, audit, (client) =>
      this.#superseding(client, t, memories, () => this.#writeBatch(client, t, memories, params)),
    );
    await this.#changed(t, memories.filter((m) => m.embedding).length);
    return outcomes;
  }

  /** Inserts a batch in a transaction: new rows in one statement, conflicts one by one. */
  async #writeBatch(
    client: pg.PoolClient,
    t: string,
    memories: NewMemory[],
    insertParams?: unknown[],
  ): Promise<WriteOutcome[]> {
    const params = insertParams ?? (await this.#insertParams(t, memories));
    const { rows } = await client.query<{ id: string; rid: string }>(INSERT_NEW, params);
    const inserted = new Map(rows.map((r) => [r.id, r.rid]));
    const out: WriteOutcome[] = [];
    const vectors: { rid: string; m: NewMemory }[] = [];
    const queued: string[] = [];
    for (const m of memories) {
      const rid = inserted.get(m.id);
      if (rid !== undefined) {
        inserted.delete(m.id); // a second row with the same id is not this one
        out.push({ id: m.id, status: 'created' }); // its vector or queue entry came with it
        continue;
      }
      out.push(await this.#conflicted(client, t, m, vectors, queued));
    }
    await this.#storeVectors(client, t, vectors);
    if (queued.length > 0)
      await client.query(
        'INSERT INTO embedding_queue (rid) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING',
        [queued],
      );
    const sessions = [...new Set(memories.flatMap((m) => (m.session === null ? [] : [m.session])))];
    if (sessions.length > 0) await client.query(RECONTEXT, [t, sessions]);
    return out;
  }

  /** The parameters of {@link INSERT_NEW} for a batch: one array per column, the vectors in binary. */
  async #insertParams(t: string, memories: NewMemory[]): Promise<unknown[]> {
    const col = <T>(f: (m: NewMemory, i: number) => T) => memories.map(f);
    const reworded = memories.map((m) => rewordedHash(m.content));
    const earlier = new Set<string>();
    const withVector = memories.filter((m) => m.embedding && m.embedding_model);
    return [
      col((m) => m.id),
      col(() => t),
      col((m) => m.project),
      col((m) => m.session),
      col((m) => m.key),
      col((m) => m.content),
      col((m) => m.content_hash),
      col((m) => m.type),
      col(
        (m) => `{${m.tags.map((x) => `"${x.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`,
      ),
      col((m) => JSON.stringify(m.metadata)),
      col((m) => m.importance),
      col((m) => m.created_at),
      col((m) => m.expires_at),
      col((m) => ownSearchText(m.content, m.tags)),
      col((m) => speakerSearchText(m.content, m.metadata)),
      withVector.map((m) => m.id),
      withVector.map((m) => m.embedding_model),
      withVector.map((m) => m.embedding?.length ?? 0),
      vectorArrayBinary(
        await this.#db.vectorOid(),
        withVector.map((m) => m.embedding as Float32Array),
      ),
      memories.filter((m) => !(m.embedding && m.embedding_model) && m.embed_later).map((m) => m.id),
      // The hash rows written before normalisation hold (null when equal: the unique index covers it);
      // a row held under it is left to #conflicted, which reinforces the holder.
      col((m) => {
        const legacy = legacyContentHash(m.content);
        return m.key === null && legacy !== m.content_hash ? legacy : null;
      }),
      col((m) => m.valid_from),
      col((m) => m.valid_to),
      reworded,
      col((m, i) => rewordable(m, reworded[i] as string)),
      col((m, i) => {
        // A rewording of an earlier row of the batch: the statement cannot see that row, #conflicted can.
        if (!rewordable(m, reworded[i] as string)) return false;
        const scoped = `${m.project ?? ''}\u0000${reworded[i]}`;
        if (!earlier.has(scoped)) {
          earlier.add(scoped);
          return false;
        }
        return true;
      }),
    ];
  }

  /** A row the batch insert skipped: its key exists (update it), its content does (duplicate), or its id. */
  async #conflicted(
    client: pg.PoolClient,
    t: string,
    m: NewMemory,
    vectors: { rid: string; m: NewMemory }[],
    queued: string[],
  ): Promise<WriteOutcome> {
    const project = m.project ?? '';
    const reworded = rewordedHash(m.content);
    if (m.key !== null) {
      const { rows } = await client.query<{ rid: string; id: string }>(
        `SELECT rid, id FROM memories WHERE tenant_id = $1 AND coalesce(project, '') = $2 AND key = $3
           AND deleted_at IS NULL AND superseded_by IS NULL FOR UPDATE`,
        [t, project, m.key],
      );
      const existing = rows[0];
      if (existing) {
        await this.#replace(client, existing.rid, m, reworded);
        if (m.embedding && m.embedding_model) vectors.push({ rid: existing.rid, m });
        else {
          await client.query('DELETE FROM memory_embeddings WHERE rid = $1', [existing.rid]);
          if (m.embed_later) queued.push(existing.rid);
        }
        return { id: existing.id, status: 'updated' };
      }
    } else {
      // The holder under the normalised hash or under the legacy one (rows written before normalisation).
      const { rows } = await client.query<{ rid: string; id: string; expires_at: string | null }>(
        `SELECT rid, id, expires_at FROM memories WHERE tenant_id = $1 AND coalesce(project, '') = $2
           AND content_hash = ANY($3::text[]) AND key IS NULL AND deleted_at IS NULL AND superseded_by IS NULL
           ORDER BY rid FOR UPDATE`,
        [t, project, [m.content_hash, legacyContentHash(m.content)]],
      );
      let holder: { rid: string; id: string } | null = null;
      for (const row of rows) {
        if (row.expires_at === null || row.expires_at > m.created_at) holder ??= row;
        // An expired memory held the content: it is gone for every read already, so it steps aside.
        else
          await client.query('UPDATE memories SET deleted_at = $2 WHERE rid = $1', [row.rid, m.created_at]);
      }
      if (holder) {
        await this.#reinforce(client, t, holder.id, m);
        return { id: holder.id, status: 'duplicate', deduplicated: 'exact' };
      }
      if (rewordable(m, reworded)) {
        const found = await client.query<{ id: string }>(
          `SELECT id FROM memories WHERE tenant_id = $1 AND coalesce(project, '') = $2 AND reworded_hash = $3
             AND key IS NULL AND deleted_at IS NULL AND superseded_by IS NULL AND reworded_hash <> ''
             AND (expires_at IS NULL OR expires_at > $4)
           ORDER BY rid LIMIT 1 FOR UPDATE`,
          [t, project, reworded, m.created_at],
        );
        const original = found.rows[0];
        if (original && (await this.#reinforce(client, t, original.id, m)))
          return { id: original.id, status: 'duplicate', deduplicated: 'reworded' };
      }
    }
    // Nothing else held it: the id itself clashed (or the holder just stepped aside). Insert plainly; an
    // id clash fails the whole batch here, as it must.
    const { rows } = await client.query<{ rid: string }>(
      `INSERT INTO memories (${INSERT_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16, $17, $18)
       RETURNING rid`,
      [
        m.id,
        t,
        m.project,
        m.session,
        m.key,
        m.content,
        m.content_hash,
        m.type,
        m.tags,
        JSON.stringify(m.metadata),
        m.importance,
        m.created_at,
        m.expires_at,
        ownSearchText(m.content, m.tags),
        speakerSearchText(m.content, m.metadata),
        m.valid_from,
        m.valid_to,
        reworded,
      ],
    );
    const rid = rows[0]?.rid as string;
    if (m.embedding && m.embedding_model) vectors.push({ rid, m });
    else if (m.embed_later) queued.push(rid);
    return { id: m.id, status: 'created' };
  }

  /**
   * Reinforces the live unkeyed memory `id` for a duplicate write `m` (see MemoryStore.insert) and
   * merges the write's tags, metadata and expiry into it as mergedAttributes() does (tags: the old, then
   * the new not yet there, up to the limit; metadata: jsonb `||`, the new keys over the old; expiry: the
   * later, null latest); false when it is no longer live. One UPDATE on the row as it stands when locked,
   * so concurrent duplicates each add their access and their attributes.
   */
  async #reinforce(client: pg.PoolClient, t: string, id: string, m: NewMemory): Promise<boolean> {
    const { step, floor } = reinforcement(m);
    const { rows } = await client.query<{ rid: string }>(
      `UPDATE memories SET access_count = access_count + 1, accessed_at = $3, updated_at = $3,
         importance = least(1, greatest(importance + $4, $5)),
         tags = tags || (ARRAY(SELECT x FROM unnest($6::text[]) WITH ORDINALITY AS u(x, i)
           WHERE NOT x = ANY(tags) ORDER BY i))[1:greatest(0, $7 - cardinality(tags))],
         metadata = CASE WHEN octet_length((metadata || $8::jsonb)::text) > $10 THEN $8::jsonb
           ELSE metadata || $8::jsonb END,
         expires_at = CASE WHEN expires_at IS NULL OR $9::text IS NULL THEN NULL
           ELSE greatest(expires_at, $9::text) END
       WHERE tenant_id = $1 AND id = $2 AND key IS NULL AND deleted_at IS NULL AND superseded_by IS NULL
         AND (expires_at IS NULL OR expires_at > $3)
       RETURNING rid`,
      [
        t,
        id,
        m.created_at,
        step,
        floor,
        m.tags,
        MEMORY_LIMITS.tags,
        JSON.stringify(m.metadata),
        m.expires_at,
        MEMORY_LIMITS.metadataBytes,
      ],
    );
    const rid = rows[0]?.rid;
    if (rid === undefined) return false;
    // Tags and metadata feed the memory's own and speaker search tokens; a plain repeat changes neither.
    if (m.tags.length > 0 || Object.keys(m.metadata).length > 0) await this.#reindexOwn(client, rid);
    return true;
  }

  /** Replaces keyed memory `rid`'s statement with write `m`, whose reworded hash is `reworded`. */
  async #replace(client: pg.PoolClient, rid: string, m: NewMemory, reworded: string): Promise<void> {
    // A new statement under the key supersedes the old one, which its version row keeps.
    await archiveVersion(client, rid, m.created_at, 'superseded', m);
    const sets = [
      'content = $2',
      'content_hash = $3',
      'updated_at = $4',
      'search_text = $5',
      'reworded_hash = $6',
    ];
    const params: unknown[] = [rid, m.content, m.content_hash, m.created_at, '', reworded];
    for (const { column, value } of replacedAttributes(m)) {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    }
    await client.query(`UPDATE memories SET ${sets.join(', ')} WHERE rid = $1`, params);
    await this.#reindexOwn(client, rid);
  }

  /** The own and speaker tokens of a row computed again from its content, tags and metadata. */
  async #reindexOwn(client: pg.PoolClient, rid: string): Promise<void> {
    const { rows } = await client.query<{
      content: string;
      tags: string[];
      metadata: Record<string, unknown>;
    }>('SELECT content, tags, metadata FROM memories WHERE rid = $1', [rid]);
    const r = rows[0];
    if (!r) return;
    await client.query('UPDATE memories SET search_text = $2, speaker_text = $3 WHERE rid = $1', [
      rid,
      ownSearchText(r.content, r.tags),
      speakerSearchText(r.content, r.metadata),
    ]);
  }

  async #storeVectors(
    client: pg.PoolClient,
    t: string,
    vectors: { rid: string; m: NewMemory }[],
  ): Promise<void> {
    await writeVectors(
      this.#db,
      client,
      vectors.map(({ rid, m }) => ({
        rid,
        tenantId: t,
        model: m.embedding_model as string,
        vector: m.embedding as Float32Array,
      })),
    );
  }

  async #one(sql: string, params: unknown[]): Promise<Memory | null> {
    const { rows } = await this.#db.query<Row>(sql, params);
    return rows[0] ? pgRowToMemory(rows[0]) : null;
  }

  async get(scope: RequestScope, id: string, now: string): Promise<Memory | null> {
    await this.#own();
    const where = pgLiveWhere(scope.tenantId, now, { include_cold: true }, 2);
    return this.#one(`SELECT ${PG_MEMORY_COLUMNS} FROM ${PG_MEMORY_FROM} WHERE m.id = $1 AND ${where.sql}`, [
      id,
      ...where.params,
    ]);
  }

  async getByKey(
    scope: RequestScope,
    key: string,
    project: string | null,
    now: string,
  ): Promise<Memory | null> {
    await this.#own();
    const where = pgLiveWhere(scope.tenantId, now, { include_cold: true }, 3);
    return this.#one(
      `SELECT ${PG_MEMORY_COLUMNS} FROM ${PG_MEMORY_FROM} WHERE m.key = $1 AND coalesce(m.project, '') = $2
         AND m.superseded_by IS NULL AND ${where.sql}`,
      [key, project ?? '', ...where.params],
    );
  }

  async list(
    scope: RequestScope,
    query: ListQuery,
    now: string,
  ): Promise<{ items: Memory[]; total: number }> {
    await this.#own();
    if (!SORT_COLUMNS.has(query.sort)) throw new Error(`unsupported sort column ${query.sort}`);
    const order = query.order === 'asc' ? 'ASC' : 'DESC';
    // memory_score is the selected column (its tier row's, or the default): by name, not m's.
    const sortBy = query.sort === 'memory_score' ? 'memory_score' : `m.${query.sort}`;
    const where = pgLiveWhere(scope.tenantId, now, query);
    const n = where.params.length;
    // One statement: the page and the total come from the same snapshot.
    const { rows } = await this.#db.query<Row & { total: string }>(
      `SELECT ${PG_MEMORY_COLUMNS}, count(*) OVER () AS total FROM ${PG_MEMORY_FROM} WHERE ${where.sql}
       ORDER BY ${sortBy} ${order} NULLS LAST, m.rid ${order} LIMIT $${n + 1} OFFSET $${n + 2}`,
      [...where.params, query.limit, query.offset],
    );
    let total = rows.length > 0 ? Number(rows[0]?.total) : 0;
    if (rows.length === 0 && query.offset > 0) {
      const c = await this.#db.query<{ n: string }>(
        `SELECT count(*) AS n FROM memories m WHERE ${where.sql}`,
        where.params,
      );
      total = Number(c.rows[0]?.n ?? 0);
    }
    return { items: rows.map(pgRowToMemory), total };
  }

  async #resolve(
    client: pg.PoolClient,
    t: string,
    target: MemoryTarget,
    now: string,
    includeDeleted = false,
  ): Promise<string | null> {
    // The target's own conditions take $1 (and $2 for a key's project); the tenant's follow.
    const [match, values] =
      'id' in target
        ? ['m.id = $1', [target.id]]
        : [
            "m.key = $1 AND coalesce(m.project, '') = $2 AND m.superseded_by IS NULL",
            [target.key, target.project ?? ''],
          ];
    const start = values.length + 1;
    const where = includeDeleted
      ? { sql: `m.tenant_id = $${start}`, params: [t] }
      : pgLiveWhere(t, now, { include_cold: true }, start);
    const { rows } = await client.query<{ rid: string }>(
      `SELECT m.rid FROM memories m WHERE ${match} AND ${where.sql} FOR UPDATE`,
      [...values, ...where.params],
    );
    return rows[0]?.rid ?? null;
  }

  async update(
    scope: RequestScope,
    target: MemoryTarget,
    patch: MemoryPatch,
    now: string,
  ): Promise<Memory | null> {
    const t = scope.tenantId;
    const result = await this.#db.transaction(async (client) => {
      const rid = await this.#resolve(client, t, target, now);
      if (rid === null) return null;
      // #resolve locked the row (FOR UPDATE): the version's number is this transaction's alone.
      await archiveVersion(client, rid, now, 'updated');
      const params: unknown[] = [rid, now];
      const sets = ['updated_at = $2'];
      const fields: [keyof MemoryPatch, string, (v: unknown) => unknown][] = [
        ['content', 'content', (v) => v],
        ['content_hash', 'content_hash', (v) => v],
        ['type', 'type', (v) => v],
        ['tags', 'tags', (v) => v],
        ['metadata', 'metadata', (v) => JSON.stringify(v)],
        ['importance', 'importance', (v) => v],
        ['expires_at', 'expires_at', (v) => v],
        ['valid_from', 'valid_from', (v) => v],
        ['valid_to', 'valid_to', (v) => v],
      ];
      for (const [field, column, encode] of fields) {
        if (patch[field] === undefined) continue;
        params.push(encode(patch[field]));
        sets.push(`${column} = $${params.length}`);
      }
      if (patch.content !== undefined) {
        params.push(rewordedHash(patch.content));
        sets.push(`reworded_hash = $${params.length}`);
      }
      await client.query(`UPDATE memories SET ${sets.join(', ')} WHERE rid = $1`, params);
      if (patch.content !== undefined || patch.tags !== undefined || patch.metadata !== undefined) {
        await this.#reindexOwn(client, rid);
        const { rows } = await client.query<{ s: string | null }>(
          'SELECT session_id AS s FROM memories WHERE rid = $1',
          [rid],
        );
        if (rows[0]?.s) await client.query(RECONTEXT, [t, [rows[0].s]]);
      }
      if (patch.embedding !== undefined) {
        if (patch.embedding && patch.embedding_model) {
          await writeVectors(this.#db, client, [
            { rid, tenantId: t, model: patch.embedding_model, vector: patch.embedding },
          ]);
        } else {
          await client.query('DELETE FROM memory_embeddings WHERE rid = $1', [rid]);
          if (patch.embed_later)
            await client.query(
              'INSERT INTO embedding_queue (rid) VALUES ($1) ON CONFLICT (rid) DO UPDATE SET leased_by = NULL, leased_until = NULL',
              [rid],
            );
        }
      }
      const { rows } = await client.query<Row>(
        `SELECT ${PG_MEMORY_COLUMNS} FROM ${PG_MEMORY_FROM} WHERE m.rid = $1`,
        [rid],
      );
      return rows[0] ? pgRowToMemory(rows[0]) : null;
    });
    if (result) await this.#changed(t, patch.embedding ? 1 : 0);
    return result;
  }

  async forget(
    scope: RequestScope,
    target: ForgetTarget,
    options: { hard: boolean; now: string },
  ): Promise<string[]> {
    if ('filter' in target && !hasFilterCondition(target.filter))
      throw invalidInput('filter', `selects every memory: give at least one of ${FILTER_FIELDS.join(', ')}`);
    const t = scope.tenantId;
    const ids = await this.#db.transaction(async (client) => {
      let rows: { rid: string; id: string; session_id: string | null }[];
      if ('expired' in target) {
        rows = (
          await client.query(
            `SELECT rid, id, session_id FROM memories
             WHERE tenant_id = $1 AND deleted_at IS NULL AND expires_at <= $2
             ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
            [t, options.now, target.limit],
          )
        ).rows;
      } else if ('filter' in target || 'all' in target) {
        const filter = 'filter' in target ? target.filter : {};
        const where = pgLiveWhere(t, options.now, { include_cold: true, ...filter });
        rows = (
          await client.query(
            `SELECT m.rid, m.id, m.session_id FROM memories m WHERE ${where.sql} FOR UPDATE`,
            where.params,
          )
        ).rows;
      } else {
        const rid = await this.#resolve(client, t, target, options.now, options.hard && 'id' in target);
        rows =
          rid === null
            ? []
            : (
                await client.query(
                  "SELECT rid, id, session_id FROM memories WHERE rid = $1 AND content_hash <> ''",
                  [rid],
                )
              ).rows;
      }
      if (rows.length === 0) return [];
      const rids = rows.map((r) => r.rid);
      await client.query('DELETE FROM embedding_queue WHERE rid = ANY($1::bigint[])', [rids]);
      if (options.hard) {
        await client.query(
          `UPDATE memories SET content = '', content_hash = '', reworded_hash = '', tags = '{}', metadata = '{}', key = NULL,
             search_text = '', context_text = '', speaker_text = '', deleted_at = coalesce(deleted_at, $2), updated_at = $2
           WHERE rid = ANY($1::bigint[])`,
          [rids, options.now],
        );
        await client.query('DELETE FROM memory_embeddings WHERE rid = ANY($1::bigint[])', [rids]);
        // After a rebalance applying now, which could record a move of these memories (TIER_LOCK).
        await client.query(TIER_LOCK, [t]);
        await client.query('DELETE FROM tier_moves WHERE memory_id = ANY($1::text[])', [
          rows.map((r) => r.id),
        ]);
        // And its last move, kept in its tier row.
        await client.query(
          `UPDATE memory_tiers SET moved_from = NULL, moved_reason = NULL, moved_score = NULL, moved_at = NULL
           WHERE rid = ANY($1::bigint[]) AND moved_at IS NOT NULL`,
          [rids],
        );
        // And every earlier state of it: a purged memory's content must not live on in its history.
        await client.query(
          'DELETE FROM memory_versions WHERE tenant_id = $1 AND memory_id = ANY($2::text[])',
          [t, rows.map((r) => r.id)],
        );
        // And the episodes consolidated into it (they hold the same words); all of a session's or a
        // tenant's when that is what is forgotten.
        await client.query('DELETE FROM episodes WHERE tenant_id = $1 AND memory_id = ANY($2::text[])', [
          t,
          rows.map((r) => r.id),
        ]);
        const purged = episodesPurgedWith(target);
        if (purged)
          await client.query(
            'DELETE FROM episodes WHERE tenant_id = $1 AND ($2::text IS NULL OR session_id = $2)',
            [t, purged.session],
          );
      } else {
        await client.query(
          'UPDATE memories SET deleted_at = $2, updated_at = $2 WHERE rid = ANY($1::bigint[])',
          [rids, options.now],
        );
      }
      // The forgotten rows' words leave their neighbours' contexts.
      const sessions = [...new Set(rows.flatMap((r) => (r.session_id ? [r.session_id] : [])))];
      if (sessions.length > 0) await client.query(RECONTEXT, [t, sessions]);
      return rows.map((r) => r.id);
    });
    if (ids.length > 0) await this.#changed(t);
    return ids;
  }

  async versions(scope: RequestScope, id: string, now: string): Promise<MemoryVersion[] | null> {
    const where = pgLiveWhere(scope.tenantId, now, { include_cold: true }, 2);
    const live = await this.#db.query(`SELECT 1 FROM memories m WHERE m.id = $1 AND ${where.sql}`, [
      id,
      ...where.params,
    ]);
    if (live.rows.length === 0) return null;
    const { rows } = await this.#db.query<MemoryVersion>(
      `SELECT ${VERSION_COLUMNS} FROM memory_versions WHERE tenant_id = $1 AND memory_id = $2 ORDER BY version`,
      [scope.tenantId, id],
    );
    return rows;
  }

  async versionsAt(scope: RequestScope, ids: string[], asOf: string): Promise<Map<string, MemoryVersion>> {
    if (ids.length === 0) return new Map();
    const { rows } = await this.#db.query<MemoryVersion & { memory_id: string }>(
      `SELECT memory_id, ${VERSION_COLUMNS} FROM memory_versions
       WHERE tenant_id = $1 AND memory_id = ANY($2::text[]) AND recorded_from <= $3 AND recorded_to > $3`,
      [scope.tenantId, ids, asOf],
    );
    return new Map(rows.map(({ memory_id, ...v }) => [memory_id, v]));
  }

  async versionsHeldAt(
    scope: RequestScope,
    asOf: string,
    limit: number,
  ): Promise<(MemoryVersion & { memory_id: string })[]> {
    const { rows } = await this.#db.query<MemoryVersion & { memory_id: string }>(
      `SELECT memory_id, ${VERSION_COLUMNS} FROM memory_versions
       WHERE tenant_id = $1 AND recorded_to > $2 AND recorded_from <= $2 ORDER BY recorded_to LIMIT $3`,
      [scope.tenantId, asOf, limit],
    );
    return rows;
  }

  async goneSince(scope: RequestScope, asOf: string, now: string, limit: number): Promise<Memory[]> {
    const { rows } = await this.#db.query<Row>(
      `SELECT ${PG_MEMORY_COLUMNS} FROM ${PG_MEMORY_FROM}
       WHERE m.tenant_id = $1 AND m.content_hash <> '' AND m.created_at <= $2
         AND (m.deleted_at IS NULL OR m.deleted_at > $2) AND (m.expires_at IS NULL OR m.expires_at > $2)
         AND (m.deleted_at IS NOT NULL OR m.expires_at <= $3)
       ORDER BY coalesce(m.deleted_at, m.expires_at), m.rid LIMIT $4`,
      [scope.tenantId, asOf, now, limit],
    );
    return rows.map(pgRowToMemory);
  }

  async candidates(scope: RequestScope, query: CandidateQuery): Promise<Candidates> {
    const t = scope.tenantId;
    const where = pgLiveWhere(t, query.now, {
      ...query.filter,
      valid_at: query.filter.as_of ?? query.now,
    });
    const queryVector =
      query.embedding && query.embedding_model
        ? { vector: query.embedding, model: query.embedding_model }
        : null;
    // Two statements side by side, each bringing its rows (and the text hits their similarities).
    const [text, found] = await Promise.all([
      this.text.search(t, query.text, where, query.limit, queryVector),
      queryVector
        ? this.vectors.search(t, queryVector.vector, queryVector.model, where, query.limit)
        : Promise.resolve(null),
    ]);
    const vector = found?.hits ?? [];
    const memories = new Map<string, Memory>();
    for (const r of [...text.map((h) => h.row), ...vector]) memories.set(r.id, pgRowToMemory(r));
    const similarity = new Map<string, number>();
    for (const h of text) if (h.similarity !== null) similarity.set(h.row.id, h.similarity);
    for (const h of vector) similarity.set(h.id, h.similarity);
    return {
      text: text.map((h) => ({ id: h.row.id, score: h.score })),
      vector: vector.map((h) => ({ id: h.id, similarity: h.similarity })),
      similarity,
      vector_search: found ? found.mode : 'none',
      memories,
    };
  }

  /**
   * Records recall's accesses in memory and writes them within a second, in one statement per tenant:
   * recall must not wait for a durable commit. Every read of this store writes what is pending first,
   * so this process always reads its own counts; close() writes the rest.
   */
  async touch(scope: RequestScope, ids: string[], now: string): Promise<void> {
    if (ids.length === 0) return;
    const counts = new Map<string, { n: number; at: string }>();
    for (const id of ids) counts.set(id, { n: (counts.get(id)?.n ?? 0) + 1, at: now });
    this.#pend(scope.tenantId, counts);
  }

  /**
   * Writes every pending access count now. One flush at a time per process (a second waits for the
   * first, then writes what came meanwhile), each locking its rows in row order: flushes of several
   * replicas over the same popular rows then queue briefly instead of deadlocking (each deadlock cost
   * a second of PostgreSQL's deadlock_timeout, and timer ticks piled more flushes onto the waiters).
   * Counts a failed flush could not write go back to the pending ones.
   */
  async flushTouches(): Promise<void> {
    if (this.#touchTimer) clearTimeout(this.#touchTimer);
    this.#touchTimer = null;
    while (this.#flushing) await this.#flushing.catch(() => undefined);
    if (this.#touches.size === 0) return;
    const batches = [...this.#touches];
    this.#touches.clear();
    this.#flushing = this.#writeTouches(batches).finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }

  async #writeTouches(batches: [string, Map<string, { n: number; at: string }>][]): Promise<void> {
    for (const [i, [tenantId, pending]] of batches.entries()) {
      const entries = [...pending];
      try {
        await this.#db.query(
          `WITH x AS (SELECT * FROM unnest($2::text[], $3::int[], $4::text[]) AS x(id, n, at)),
           t AS (SELECT m.rid, x.n, x.at FROM memories m JOIN x ON x.id = m.id
                 WHERE m.tenant_id = $1 AND m.deleted_at IS NULL ORDER BY m.rid FOR UPDATE OF m)
           UPDATE memories m SET access_count = m.access_count + t.n,
             accessed_at = CASE WHEN m.accessed_at IS NULL OR m.accessed_at < t.at THEN t.at ELSE m.accessed_at END
           FROM t WHERE m.rid = t.rid`,
          [tenantId, entries.map(([id]) => id), entries.map(([, v]) => v.n), entries.map(([, v]) => v.at)],
          this.#db.primary,
        );
      } catch (error) {
        for (const [tenant, counts] of batches.slice(i)) this.#pend(tenant, counts);
        throw error;
      }
    }
  }

  /** Adds counts to the pending ones and makes sure a flush is due. */
  #pend(tenantId: string, counts: Map<string, { n: number; at: string }>): void {
    const pending = this.#touches.get(tenantId) ?? new Map<string, { n: number; at: string }>();
    for (const [id, { n, at }] of counts) {
      const seen = pending.get(id);
      pending.set(id, { n: (seen?.n ?? 0) + n, at: seen && seen.at > at ? seen.at : at });
    }
    this.#touches.set(tenantId, pending);
    this.#touchTimer ??= setTimeout(() => void this.flushTouches().catch(() => undefined), 1000);
    this.#touchTimer.unref?.();
  }

  async usage(scope: RequestScope): Promise<{ memories: number; bytes: number }> {
    const { rows } = await this.#db.query<{ n: string; b: string }>(
      `SELECT count(*) AS n, coalesce(sum(octet_length(content) + octet_length(metadata::text)), 0) AS b
       FROM memories WHERE tenant_id = $1 AND deleted_at IS NULL`,
      [scope.tenantId],
    );
    return { memories: Number(rows[0]?.n ?? 0), bytes: Number(rows[0]?.b ?? 0) };
  }

  /** Before a read: this process's pending access counts are written, so the read shows them. */
  async #own(): Promise<void> {
    if (this.#touches.size > 0) await this.flushTouches();
  }

  async overview(
    scope: RequestScope,
    options: Parameters<MemoryStore['overview']>[1],
  ): Promise<{ important: Memory[]; recent: Memory[]; total: number }> {
    await this.#own();
    // Only what holds now: no fact whose validity ended (or has not begun), none superseded.
    const base = pgLiveWhere(scope.tenantId, options.now, { valid_at: options.now });
    const params: unknown[] = [...base.params];
    let projectSql = 'm.project IS NULL';
    if (options.project !== null) {
      params.push(options.project);
      projectSql = `m.project = $${params.length}`;
    }
    const where = `${base.sql} AND ${projectSql}`;
    const n = params.length;
    const [important, recent, total] = await Promise.all([
      this.#db.query<Row>(
        `SELECT ${PG_MEMORY_COLUMNS} FROM ${PG_MEMORY_FROM} WHERE ${where}
         ORDER BY (m.type = ANY($${n + 1}::text[])) DESC, m.importance DESC, m.created_at DESC LIMIT $${n + 2}`,
        [...params, options.priorityTypes, options.limit],
      ),
      this.#db.query<Row>(
        `SELECT ${PG_MEMORY_COLUMNS} FROM ${PG_MEMORY_FROM} WHERE ${where} ORDER BY m.created_at DESC, m.rid DESC LIMIT $${n + 1}`,
        [...params, options.limit],
      ),
      this.#db.query<{ n: string }>(`SELECT count(*) AS n FROM memories m WHERE ${where}`, params),
    ]);
    return {
      important: important.rows.map(pgRowToMemory),
      recent: recent.rows.map(pgRowToMemory),
      total: Number(total.rows[0]?.n ?? 0),
    };
  }
}
