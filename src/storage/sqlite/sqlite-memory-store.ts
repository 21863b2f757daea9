import { isDeepStrictEqual } from 'node:util';
import { invalidInput } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import { currentWriteAudit } from '../../modules/audit/write-audit.js';
import { legacyContentHash, rewordedHash } from '../../modules/memory/content-hash.js';
import { FILTER_FIELDS, hasFilterCondition } from '../../modules/memory/memory-filter.js';
import type {
  CandidateQuery,
  Candidates,
  MemoryPatch,
  MemoryStore,
  MemoryTarget,
  MemoryVersion,
  NewMemory,
  WriteOutcome,
} from '../../modules/memory/memory-store.js';
import type { Memory } from '../../modules/memory/memory-types.js';
import { supersedable } from '../../modules/memory/supersession.js';
import { auditValues } from '../auth-rows.js';
import { episodesPurgedWith } from '../episode-forget.js';
import {
  mergedAttributes,
  reinforcement,
  replacedAttributes,
  statementAttributes,
} from '../memory-columns.js';
import { SqliteAccessCounts } from './sqlite-access-counts.js';
import { INSERT_AUDIT_SQL } from './sqlite-audit-store.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { groupCommitFor, type SqliteGroupCommit } from './sqlite-group-commit.js';
import {
  liveMemoryWhere,
  MEMORY_COLUMNS,
  memoryRow,
  memoryRows,
  rowToMemory,
  VERSION_COLUMNS,
  type VersionRow,
  vectorToBlob,
  versionFromRow,
} from './sqlite-memory-rows.js';
import { SqliteSearchText } from './sqlite-search-text.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { SqliteTextSearch, type TextSearchOptions } from './sqlite-text-search.js';
import { SqliteVectorSearch, type VectorSearchOptions } from './sqlite-vector-search.js';
import { prepareStatement, StatementCache } from './statement-cache.js';

const SORT_COLUMNS = new Set(['created_at', 'updated_at', 'accessed_at', 'importance', 'memory_score']);

/**
 * The memory port on SQLite. Writes run in IMMEDIATE transactions, so concurrent processes serialise;
 * those of one turn of the event loop share one (group commit, each in its own savepoint).
 */
export class SqliteMemoryStore implements MemoryStore {
  readonly #db: SqliteDatabase;
  readonly #writes: SqliteGroupCommit;
  readonly #sql: StatementCache;
  readonly vectors: SqliteVectorSearch;
  readonly text: SqliteTextSearch;
  readonly #maxSeq;
  readonly #insertRow;
  readonly #insertTag;
  readonly #searchText: SqliteSearchText;
  readonly #upsertEmbedding;
  readonly #deleteEmbedding;
  readonly #insertEmbedding;
  readonly #findByKey;
  /** Access counts of recent recalls not yet written. */
  readonly #access: SqliteAccessCounts;
  readonly #findByHash;
  readonly #findReworded;
  readonly #findLive;
  readonly #readMerged;
  readonly #reinforce;
  readonly #enqueue;
  /** An audited write's event, stored in the write's transaction (WriteAudit). */
  readonly #insertAudit;

  constructor(
    db: SqliteDatabase,
    logger: Logger,
    options: {
      vectors?: Partial<VectorSearchOptions>;
      text?: Partial<TextSearchOptions>;
      /** Checks around every write that the database file is still in place (see SqliteFileGuard). */
      file?: SqliteFileGuard;
    } = {},
  ) {
    this.#db = db;
    this.#writes = groupCommitFor(db);
    this.#sql = new StatementCache(db);
    this.vectors = new SqliteVectorSearch(db, logger, options.vectors);
    this.text = new SqliteTextSearch(db, options.text);
    // Sequences are per tenant: the vector index catches up one tenant at a time, and the max comes
    // straight off the (tenant_id, change_seq) index.
    this.#maxSeq = prepareStatement(
      db,
      'SELECT coalesce(max(change_seq), 0) AS s FROM memories WHERE tenant_id = ?',
    );
    this.#insertRow = prepareStatement(
      db,
      `INSERT INTO memories (id, tenant_id, project, session_id, key, content, content_hash, type, tags, metadata,
         importance, created_at, updated_at, expires_at, change_seq, search_text, context_text, speaker_text,
         valid_from, valid_to, reworded_hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#insertTag = prepareStatement(db, 'INSERT OR IGNORE INTO memory_tags (tag, rid) VALUES (?, ?)');
    // The full-text entries (see migration 4: the store keeps the index, no triggers).
    this.#searchText = new SqliteSearchText(db);
    this.#upsertEmbedding = prepareStatement(
      db,
      `INSERT INTO memory_embeddings (rid, model, embedding) VALUES (?, ?, ?)
       ON CONFLICT (rid) DO UPDATE SET model = excluded.model, embedding = excluded.embedding`,
    );
    this.#deleteEmbedding = prepareStatement(db, 'DELETE FROM memory_embeddings WHERE rid = ?');
    this.#insertEmbedding = prepareStatement(
      db,
      'INSERT INTO memory_embeddings (rid, model, embedding) VALUES (?, ?, ?)',
    );
    this.#findByKey = prepareStatement(
      db,
      `SELECT rid, id FROM memories WHERE tenant_id = ? AND coalesce(project, '') = ? AND key = ?
         AND deleted_at IS NULL AND superseded_by IS NULL`,
    );
    this.#findByHash = prepareStatement(
      db,
      `SELECT rid, id FROM memories WHERE tenant_id = ? AND coalesce(project, '') = ? AND content_hash IN (?, ?)
         AND key IS NULL AND deleted_at IS NULL AND superseded_by IS NULL
         AND (expires_at IS NULL OR expires_at > ?) LIMIT 1`,
    );
    // The oldest live unkeyed rewording of a write (NewMemory.merge_reworded).
    this.#findReworded = prepareStatement(
      db,
      `SELECT rid, id FROM memories WHERE tenant_id = ? AND coalesce(project, '') = ? AND reworded_hash = ?
         AND key IS NULL AND deleted_at IS NULL AND superseded_by IS NULL AND reworded_hash <> ''
         AND (expires_at IS NULL OR expires_at > ?) ORDER BY rid LIMIT 1`,
    );
    // A near-duplicate the service chose: merged into only while it is still live and unkeyed.
    this.#findLive = prepareStatement(
      db,
      `SELECT rid FROM memories WHERE tenant_id = ? AND id = ? AND key IS NULL AND deleted_at IS NULL
         AND superseded_by IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
    );
    this.#readMerged = prepareStatement(db, 'SELECT tags, metadata, expires_at FROM memories WHERE rid = ?');
    // Reinforcement of a duplicate: a repeat is a use, and says the fact matters at least as much; its
    // tags, metadata and expiry merge in (mergedAttributes, computed under the write lock).
    this.#reinforce = prepareStatement(
      db,
      `UPDATE memories SET access_count = access_count + 1, accessed_at = ?, updated_at = ?,
         importance = min(1.0, max(importance + ?, ?)), tags = ?, metadata = ?, expires_at = ?, change_seq = ?
       WHERE rid = ?`,
    );
    this.#enqueue = prepareStatement(db, 'INSERT OR IGNORE INTO embedding_queue (rid) VALUES (?)');
    this.#insertAudit = prepareStatement(db, INSERT_AUDIT_SQL);
    this.#access = new SqliteAccessCounts(db, logger, options.file);
    // Once, here, not in each method: SQLite errors become storage codes, writes are file-checked.
    guardStoreMethods<SqliteMemoryStore>(
      this,
      {
        reads: [
          'get',
          'getByKey',
          'list',
          'candidates',
          'touch',
          'overview',
          'usage',
          'changeVersion',
          'versions',
          'versionsAt',
          'versionsHeldAt',
          'goneSince',
        ],
        writes: ['insert', 'update', 'forget'],
      },
      { dbPath: db.name, logger, file: options.file },
    );
  }

  /**
   * The tenant's highest change_seq (every write of its memories, from any process on the file, takes a
   * new one: inserts, updates, forgets, imports, queued vectors stored) and the newest tier move of any
   * tenant (moves change no change_seq; the rebalance is rare, so all tenants share brain_meta's
   * tier_version, which each plan that moves something counts up). Two index seeks.
   */
  async changeVersion(scope: RequestScope): Promise<string> {
    const row = this.#sql
      .get(
        `SELECT (SELECT coalesce(max(change_seq), 0) FROM memories WHERE tenant_id = ?) AS s,
                (SELECT value FROM brain_meta WHERE key = 'tier_version') AS t`,
      )
      .get(scope.tenantId) as { s: number; t: string };
    return `${row.s}:${row.t}`;
  }

  #nextSeq(tenantId: string): number {
    return (this.#maxSeq.get(tenantId) as { s: number }).s + 1;
  }

  async insert(scope: RequestScope, memories: NewMemory[]): Promise<WriteOutcome[]> {
    // The audited write this insert belongs to: its event goes in this transaction (one commit).
    const audit = currentWriteAudit();
    let audited = false;
    const outcomes = await this.#writes.run((): WriteOutcome[] => {
      // Checked before anything is written: a batch that cannot supersede what it names writes nothing.
      const superseded = this.#supersededRows(scope.tenantId, memories);
      let seq = this.#nextSeq(scope.tenantId);
      const text = this.#searchText.batch(scope.tenantId);
      const outcomes = memories.map((m): WriteOutcome => {
        const project = m.project ?? '';
        const reworded_hash = rewordedHash(m.content);
        if (m.key !== null) {
          const existing = this.#findByKey.get(scope.tenantId, project, m.key) as
            | { rid: number; id: string }
            | undefined;
          if (existing) {
            this.#replace(existing.rid, m, seq++, reworded_hash);
            return { id: existing.id, status: 'updated' };
          }
        } else {
          const dup = this.#findByHash.get(
            scope.tenantId,
            project,
            m.content_hash,
            legacyContentHash(m.content),
            m.created_at,
          ) as { rid: number; id: string } | undefined;
          if (dup) {
            this.#reinforceRow(dup.rid, m, seq++);
            return { id: dup.id, status: 'duplicate', deduplicated: 'exact' };
          }
          const reworded =
            m.merge_reworded && reworded_hash !== ''
              ? (this.#findReworded.get(scope.tenantId, project, reworded_hash, m.created_at) as
                  | { rid: number; id: string }
                  | undefined)
              : undefined;
          if (reworded) {
            this.#reinforceRow(reworded.rid, m, seq++);
            return { id: reworded.id, status: 'duplicate', deduplicated: 'reworded' };
          }
          const near = m.merge_into && this.#findLive.get(scope.tenantId, m.merge_into.id, m.created_at);
          if (near && m.merge_into) {
            const { rid } = near as { rid: number };
            this.#reinforceRow(rid, m, seq++);
            const { id, similarity } = m.merge_into;
            return { id, status: 'duplicate', deduplicated: 'similar', similarity };
          }
        }
        const tags = JSON.stringify(m.tags);
        const fields = text.prepare(m.content, m.tags, m.metadata, m.session);
        // Positional binding: binding a spread object by name costs more than the rest of the row's JS.
        const info = this.#insertRow.run(
          m.id,
          scope.tenantId,
          m.project,
          m.session,
          m.key,
          m.content,
          m.content_hash,
          m.type,
          tags,
          JSON.stringify(m.metadata),
          m.importance,
          m.created_at,
          m.created_at,
          m.expires_at,
          seq++,
          fields.own,
          fields.context,
          fields.speaker,
          m.valid_from,
          m.valid_to,
          reworded_hash,
        );
        const rid = Number(info.lastInsertRowid);
        text.added(rid, m.session, fields);
        for (const tag of m.tags) this.#insertTag.run(tag, rid);
        if (m.embedding && m.embedding_model)
          this.#insertEmbedding.run(rid, m.embedding_model, vectorToBlob(m.embedding));
        else if (m.embed_later) this.#enqueue.run(rid);
        return { id: m.id, status: 'created' };
      });
      text.finish();
      for (const [i, m] of memories.entries()) {
        const rid = superseded[i];
        if (rid !== undefined && outcomes[i]?.id !== m.supersedes)
          this.#supersede(rid, m, outcomes[i]?.id as string, seq++);
      }
      const events = audit?.take(scope, outcomes) ?? [];
      for (const event of events) this.#insertAudit.run(...auditValues(event));
      audited = events.length > 0;
      return outcomes;
    });
    if (audited) audit?.committed();
    return outcomes;
  }

  /**
   * The rid of the live memory each write supersedes (by batch index), or an INVALID_INPUT on
   * `supersedes` when one is not live, was superseded already, or is named twice in the batch.
   */
  #supersededRows(tenantId: string, memories: NewMemory[]): (number | undefined)[] {
    const rids: (number | undefined)[] = [];
    const named = new Set<string>();
    for (const m of memories) {
      if (!m.supersedes) {
        rids.push(undefined);
        continue;
      }
      const row = this.#sql
        .get(
          `SELECT rid, superseded_by FROM memories WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL
             AND (expires_at IS NULL OR expires_at > ?)`,
        )
        .get(tenantId, m.supersedes, m.created_at) as
        | { rid: number; superseded_by: string | null }
        | undefined;
      supersedable('supersedes', m.supersedes, row?.superseded_by, row !== undefined, named);
      rids.push(row?.rid);
    }
    return rids;
  }

  /** Row `rid` superseded by the memory `m` wrote as `id` (see NewMemory.supersedes). */
  #supersede(rid: number, m: NewMemory, id: string, seq: number): void {
    this.#archive(rid, m.created_at, 'superseded');
    const closeAt = m.valid_from ?? m.created_at;
    this.#sql
      .get(
        `UPDATE memories SET superseded_by = ?, updated_at = ?, change_seq = ?,
           valid_to = CASE WHEN (valid_to IS NULL OR valid_to > ?) AND (valid_from IS NULL OR valid_from < ?)
             THEN ? ELSE valid_to END
         WHERE rid = ?`,
      )
      .run(id, m.created_at, seq, closeAt, closeAt, closeAt, rid);
  }

  /**
   * A duplicate's write: reinforces the memory it repeats and merges the write's tags, metadata and
   * expiry into it (see MemoryStore.insert, reinforcement() and mergedAttributes()). Inside the write
   * transaction, so the read and the update see no other writer between them.
   */
  #reinforceRow(rid: number, m: NewMemory, seq: number): void {
    const { step, floor } = reinforcement(m);
    const stored = this.#readMerged.get(rid) as { tags: string; metadata: string; expires_at: string | null };
    const old = {
      tags: JSON.parse(stored.tags) as string[],
      metadata: JSON.parse(stored.metadata) as Record<string, unknown>,
      expires_at: stored.expires_at,
    };
    const merged = mergedAttributes(old, m);
    const tags = JSON.stringify(merged.tags);
    const metadata = JSON.stringify(merged.metadata);
    this.#reinforce.run(m.created_at, m.created_at, step, floor, tags, metadata, merged.expires_at, seq, rid);
    const added = merged.tags.slice(old.tags.length);
    for (const tag of added) this.#insertTag.run(tag, rid);
    // Tags and metadata feed the memory's own and speaker search tokens; a plain repeat changes neither.
    if (added.length > 0 || Object.keys(m.metadata).length > 0) this.#searchText.reindexOwn(rid);
  }

  /**
   * Updates a keyed memory in place: content and embedding are replaced, the attributes the caller gave
   * are set, and those in `m.keep` stay as they were; its id and created_at stay.
   */
  #replace(rid: number, m: NewMemory, seq: number, reworded: string): void {
    // A new statement under the key supersedes the old one, which its version row keeps.
    this.#archive(rid, m.created_at, 'superseded', m);
    const keep = new Set(m.keep);
    const sets = ['content = ?', 'content_hash = ?', 'reworded_hash = ?', 'updated_at = ?', 'change_seq = ?'];
    const params: unknown[] = [m.content, m.content_hash, reworded, m.created_at, seq];
    for (const { column, value, field } of replacedAttributes(m)) {
      sets.push(`${column} = ?`);
      params.push(field === 'tags' ? JSON.stringify(value) : value);
    }
    this.#sql.get(`UPDATE memories SET ${sets.join(', ')} WHERE rid = ?`).run(...params, rid);
    this.#searchText.reindexOwn(rid);
    if (!keep.has('tags')) {
      this.#sql.get('DELETE FROM memory_tags WHERE rid = ?').run(rid);
      for (const tag of m.tags) this.#insertTag.run(tag, rid);
    }
    if (m.embedding && m.embedding_model) {
      this.#upsertEmbedding.run(rid, m.embedding_model, vectorToBlob(m.embedding));
    } else {
      this.#deleteEmbedding.run(rid);
      if (m.embed_later) this.#enqueue.run(rid);
    }
  }

  async get(scope: RequestScope, id: string, now: string): Promise<Memory | null> {
    this.#access.tryFlush();
    const where = liveMemoryWhere(scope.tenantId, now, { include_cold: true });
    const row = memoryRow(
      this.#sql.get(`SELECT ${MEMORY_COLUMNS} FROM memories m WHERE m.id = ? AND ${where.sql}`),
      id,
      ...where.params,
    );
    return row ? this.#access.overlay(scope.tenantId, rowToMemory(row)) : null;
  }

  async getByKey(
    scope: RequestScope,
    key: string,
    project: string | null,
    now: string,
  ): Promise<Memory | null> {
    this.#access.tryFlush();
    const where = liveMemoryWhere(scope.tenantId, now, { include_cold: true });
    const row = memoryRow(
      this.#sql.get(
        `SELECT ${MEMORY_COLUMNS} FROM memories m WHERE m.key = ? AND coalesce(m.project, '') = ?
           AND m.superseded_by IS NULL AND ${where.sql}`,
      ),
      key,
      project ?? '',
      ...where.params,
    );
    return row ? this.#access.overlay(scope.tenantId, rowToMemory(row)) : null;
  }

  async list(
    scope: RequestScope,
    query: Parameters<MemoryStore['list']>[1],
    now: string,
  ): Promise<{ items: Memory[]; total: number }> {
    this.#access.tryFlush();
    const where = liveMemoryWhere(scope.tenantId, now, query);
    // The sort column comes from a fixed set: anything else would be SQL injection, so refuse it.
    if (!SORT_COLUMNS.has(query.sort)) throw new Error(`unsupported sort column ${query.sort}`);
    const order = query.order === 'asc' ? 'ASC' : 'DESC';
    const read = this.#db.transaction(() => {
      const rows = memoryRows(
        this.#sql.get(
          `SELECT ${MEMORY_COLUMNS} FROM memories m WHERE ${where.sql}
           ORDER BY m.${query.sort} ${order} NULLS LAST, m.rid ${order} LIMIT ? OFFSET ?`,
        ),
        ...where.params,
        query.limit,
        query.offset,
      );
      const { n } = this.#sql
        .get(`SELECT count(*) AS n FROM memories m WHERE ${where.sql}`)
        .get(...where.params) as {
        n: number;
      };
      return { items: rows.map((r) => this.#access.overlay(scope.tenantId, rowToMemory(r))), total: n };
    });
    // One read transaction: the page and the total come from the same snapshot.
    return read.deferred();
  }

  #resolve(scope: RequestScope, target: MemoryTarget, now: string, includeDeleted = false): number | null {
    const where = includeDeleted
      ? { sql: 'm.tenant_id = ?', params: [scope.tenantId] as unknown[] }
      : liveMemoryWhere(scope.tenantId, now, { include_cold: true });
    const row =
      'id' in target
        ? this.#sql
            .get(`SELECT m.rid FROM memories m WHERE m.id = ? AND ${where.sql}`)
            .get(target.id, ...where.params)
        : this.#sql
            .get(
              `SELECT m.rid FROM memories m WHERE m.key = ? AND coalesce(m.project, '') = ? AND m.superseded_by IS NULL
                 AND ${where.sql}`,
            )
            .get(target.key, target.project ?? '', ...where.params);
    return (row as { rid: number } | undefined)?.rid ?? null;
  }

  async update(
    scope: RequestScope,
    target: MemoryTarget,
    patch: MemoryPatch,
    now: string,
  ): Promise<Memory | null> {
    this.#access.tryFlush();
    return this.#writes.run((): Memory | null => {
      const rid = this.#resolve(scope, target, now);
      if (rid === null) return null;
      this.#archive(rid, now, 'updated');
      const sets: string[] = ['updated_at = ?', 'change_seq = ?'];
      const params: unknown[] = [now, this.#nextSeq(scope.tenantId)];
      const fields: [keyof MemoryPatch, string, (v: unknown) => unknown][] = [
        ['content', 'content', (v) => v],
        ['content_hash', 'content_hash', (v) => v],
        ['type', 'type', (v) => v],
        ['tags', 'tags', (v) => JSON.stringify(v)],
        ['metadata', 'metadata', (v) => JSON.stringify(v)],
        ['importance', 'importance', (v) => v],
        ['expires_at', 'expires_at', (v) => v],
        ['valid_from', 'valid_from', (v) => v],
        ['valid_to', 'valid_to', (v) => v],
      ];
      for (const [field, column, encode] of fields) {
        if (patch[field] === undefined) continue;
        sets.push(`${column} = ?`);
        params.push(encode(patch[field]));
      }
      if (patch.content !== undefined) {
        sets.push('reworded_hash = ?');
        params.push(rewordedHash(patch.content));
      }
      this.#sql.get(`UPDATE memories SET ${sets.join(', ')} WHERE rid = ?`).run(...params, rid);
      if (patch.tags !== undefined) {
        this.#sql.get('DELETE FROM memory_tags WHERE rid = ?').run(rid);
        for (const tag of patch.tags) this.#insertTag.run(tag, rid);
      }
      if (patch.content !== undefined || patch.tags !== undefined || patch.metadata !== undefined)
        this.#searchText.reindexOwn(rid);
      if (patch.embedding !== undefined) {
        if (patch.embedding && patch.embedding_model) {
          this.#upsertEmbedding.run(rid, patch.embedding_model, vectorToBlob(patch.embedding));
        } else {
          this.#deleteEmbedding.run(rid);
          if (patch.embed_later) this.#enqueue.run(rid);
        }
      }
      const row = memoryRow(this.#sql.get(`SELECT ${MEMORY_COLUMNS} FROM memories m WHERE m.rid = ?`), rid);
      return row ? this.#access.overlay(scope.tenantId, rowToMemory(row)) : null;
    });
  }

  async forget(
    scope: RequestScope,
    target: Parameters<MemoryStore['forget']>[1],
    options: { hard: boolean; now: string },
  ): Promise<string[]> {
    // Defence in depth below the service's schema: a filter that adds no condition would select every
    // memory, so only an explicit { all: true } may do that.
    if ('filter' in target && !hasFilterCondition(target.filter)) {
      throw invalidInput('filter', `selects every memory: give at least one of ${FILTER_FIELDS.join(', ')}`);
    }
    return this.#writes.run((): string[] => {
      let rows: { rid: number; id: string; session_id: string | null; deleted_at: string | null }[];
      if ('expired' in target) {
        rows = this.#sql
          .get(
            `SELECT rid, id, session_id, deleted_at FROM memories
             WHERE tenant_id = ? AND deleted_at IS NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?`,
          )
          .all(scope.tenantId, options.now, target.limit) as typeof rows;
      } else if ('filter' in target || 'all' in target) {
        const filter = 'filter' in target ? target.filter : {};
        const where = liveMemoryWhere(scope.tenantId, options.now, { include_cold: true, ...filter });
        rows = this.#sql
          .get(`SELECT m.rid, m.id, m.session_id, m.deleted_at FROM memories m WHERE ${where.sql}`)
          .all(...where.params) as typeof rows;
      } else {
        // A hard forget by id may purge a memory that was soft-deleted before.
        const rid = this.#resolve(scope, target, options.now, options.hard && 'id' in target);
        const row =
          rid === null
            ? undefined
            : (this.#sql
                .get(
                  'SELECT rid, id, session_id, deleted_at FROM memories WHERE rid = ? AND content_hash <> ?',
                )
                .get(rid, '') as (typeof rows)[number] | undefined);
        rows = row ? [row] : [];
      }
      if (rows.length === 0) return [];
      const rids = JSON.stringify(rows.map((r) => r.rid));
      this.#sql.get('DELETE FROM embedding_queue WHERE rid IN (SELECT value FROM json_each(?))').run(rids);
      const seq = this.#nextSeq(scope.tenantId);
      if (options.hard) {
        // Out of the index (and the tenant's statistics) while their fields still hold what was counted.
        for (const row of rows) if (row.deleted_at === null) this.#searchText.remove(row.rid);
        this.#sql
          .get(
            `UPDATE memories SET content = '', content_hash = '', reworded_hash = '', tags = '[]', metadata = '{}', key = NULL,
               search_text = '', context_text = '', speaker_text = '',
               moved_from = NULL, moved_reason = NULL, moved_score = NULL, moved_at = NULL,
               deleted_at = coalesce(deleted_at, ?), updated_at = ?, change_seq = ?
             WHERE rid IN (SELECT value FROM json_each(?))`,
          )
          .run(options.now, options.now, seq, rids);
        // Its words are purged from the contexts of the memories around it, too.
        for (const row of rows)
          if (row.session_id !== null)
            this.#searchText.purgeFromNeighbours(scope.tenantId, row.session_id, row.rid);
        this.#sql.get('DELETE FROM memory_tags WHERE rid IN (SELECT value FROM json_each(?))').run(rids);
        this.#sql
          .get('DELETE FROM memory_embeddings WHERE rid IN (SELECT value FROM json_each(?))')
          .run(rids);
        // Its tier moves too (the last one was cleared above): a purged memory leaves no trace but its
        // tombstone.
        this.#sql
          .get('DELETE FROM tier_moves WHERE memory_id IN (SELECT value FROM json_each(?))')
          .run(JSON.stringify(rows.map((r) => r.id)));
        // And every earlier state of it: a purged memory's content must not live on in its history.
        this.#sql
          .get(
            'DELETE FROM memory_versions WHERE tenant_id = ? AND memory_id IN (SELECT value FROM json_each(?))',
          )
          .run(scope.tenantId, JSON.stringify(rows.map((r) => r.id)));
        // And the episodes consolidated into it (they hold the same words); all of a session's or a
        // tenant's when that is what is forgotten.
        this.#sql
          .get('DELETE FROM episodes WHERE tenant_id = ? AND memory_id IN (SELECT value FROM json_each(?))')
          .run(scope.tenantId, JSON.stringify(rows.map((r) => r.id)));
        const purged = episodesPurgedWith(target);
        if (purged)
          this.#sql
            .get('DELETE FROM episodes WHERE tenant_id = ? AND (? IS NULL OR session_id = ?)')
            .run(scope.tenantId, purged.session, purged.session);
      } else {
        this.#sql
          .get(
            `UPDATE memories SET deleted_at = ?, updated_at = ?, change_seq = ?
             WHERE rid IN (SELECT value FROM json_each(?))`,
          )
          .run(options.now, options.now, seq, rids);
        for (const row of rows) this.#searchText.remove(row.rid);
      }
      return rows.map((r) => r.id);
    });
  }

  /**
   * Keeps the state of row `rid` as a version row before a write replaces it (see MemoryVersion),
   * numbered after the last one. With `unlessSame` (a keyed write): not when it leaves the content and
   * every recorded attribute as they are (a plain repeat under the key changes no statement). Runs
   * inside the caller's write transaction.
   */
  #archive(rid: number, at: string, change: MemoryVersion['change'], unlessSame?: NewMemory): void {
    const same = unlessSame ? statementAttributes(unlessSame) : [];
    const unless = unlessSame
      ? `AND NOT (m.content_hash = ?${same.map((a) => ` AND m.${a.column} IS ?`).join('')})`
      : '';
    // Metadata compares as a value, as PostgreSQL's jsonb does: the same keys in another order are the
    // same, so the stored text stands in for the new one when the two parse alike.
    const metadata =
      unlessSame && same.some((a) => a.column === 'metadata')
        ? ((this.#readMerged.get(rid) as { metadata: string } | undefined)?.metadata ?? null)
        : null;
    const values = unlessSame
      ? [
          unlessSame.content_hash,
          ...same.map((a) => {
            if (a.column === 'tags') return JSON.stringify(a.value);
            if (
              a.column === 'metadata' &&
              metadata !== null &&
              isDeepStrictEqual(JSON.parse(metadata), unlessSame.metadata)
            )
              return metadata;
            return a.value;
          }),
        ]
      : [];
    this.#sql
      .get(
        `INSERT INTO memory_versions (tenant_id, memory_id, version, content, type, tags, metadata, importance,
           valid_from, valid_to, recorded_from, recorded_to, change)
         SELECT m.tenant_id, m.id,
           coalesce((SELECT max(v.version) FROM memory_versions v WHERE v.tenant_id = m.tenant_id AND v.memory_id = m.id), 0) + 1,
           m.content, m.type, m.tags, m.metadata, m.importance, m.valid_from, m.valid_to,
           coalesce((SELECT max(v.recorded_to) FROM memory_versions v WHERE v.tenant_id = m.tenant_id AND v.memory_id = m.id), m.created_at),
           ?, ?
         FROM memories m WHERE m.rid = ? ${unless}`,
      )
      .run(at, change, rid, ...values);
  }

  async versions(scope: RequestScope, id: string, now: string): Promise<MemoryVersion[] | null> {
    const where = liveMemoryWhere(scope.tenantId, now, { include_cold: true });
    const live = this.#sql
      .get(`SELECT 1 FROM memories m WHERE m.id = ? AND ${where.sql}`)
      .get(id, ...where.params);
    if (live === undefined) return null;
    const rows = this.#sql
      .get(
        `SELECT ${VERSION_COLUMNS} FROM memory_versions WHERE tenant_id = ? AND memory_id = ? ORDER BY version`,
      )
      .all(scope.tenantId, id) as VersionRow[];
    return rows.map(versionFromRow);
  }

  async versionsAt(scope: RequestScope, ids: string[], asOf: string): Promise<Map<string, MemoryVersion>> {
    if (ids.length === 0) return new Map();
    const rows = this.#sql
      .get(
        `SELECT memory_id, ${VERSION_COLUMNS} FROM memory_versions
         WHERE tenant_id = ? AND memory_id IN (SELECT value FROM json_each(?)) AND recorded_from <= ? AND recorded_to > ?`,
      )
      .all(scope.tenantId, JSON.stringify(ids), asOf, asOf) as (VersionRow & { memory_id: string })[];
    return new Map(rows.map((r) => [r.memory_id, versionFromRow(r)]));
  }

  async versionsHeldAt(
    scope: RequestScope,
    asOf: string,
    limit: number,
  ): Promise<(MemoryVersion & { memory_id: string })[]> {
    const rows = this.#sql
      .get(
        `SELECT memory_id, ${VERSION_COLUMNS} FROM memory_versions
         WHERE tenant_id = ? AND recorded_to > ? AND recorded_from <= ? ORDER BY recorded_to LIMIT ?`,
      )
      .all(scope.tenantId, asOf, asOf, limit) as (VersionRow & { memory_id: string })[];
    return rows.map((r) => ({ ...versionFromRow(r), memory_id: r.memory_id }));
  }

  async goneSince(scope: RequestScope, asOf: string, now: string, limit: number): Promise<Memory[]> {
    const rows = memoryRows(
      this.#sql.get(
        `SELECT ${MEMORY_COLUMNS} FROM memories m
         WHERE m.tenant_id = ? AND m.content_hash <> '' AND m.created_at <= ?
           AND (m.deleted_at IS NULL OR m.deleted_at > ?) AND (m.expires_at IS NULL OR m.expires_at > ?)
           AND (m.deleted_at IS NOT NULL OR m.expires_at <= ?)
         ORDER BY coalesce(m.deleted_at, m.expires_at), m.rid LIMIT ?`,
      ),
      scope.tenantId,
      asOf,
      asOf,
      asOf,
      now,
      limit,
    );
    return rows.map(rowToMemory);
  }

  async candidates(scope: RequestScope, query: CandidateQuery): Promise<Candidates> {
    // Recall sees only facts valid now (or at as_of), and no superseded one unless as_of asks for then.
    const filter = { ...query.filter, valid_at: query.filter.as_of ?? query.now };
    const where = liveMemoryWhere(scope.tenantId, query.now, filter);
    const text = this.text.search(scope.tenantId, query.text, where, query.limit);
    let vector: { rid: number; similarity: number }[] = [];
    let mode: Candidates['vector_search'] = 'none';
    let extraSimilarity: { rid: number; similarity: number }[] = [];
    if (query.embedding && query.embedding_model) {
      const found = this.vectors.search(
        scope.tenantId,
        query.embedding,
        query.embedding_model,
        filter,
        query.limit,
        query.now,
      );
      vector = found.hits;
      mode = found.mode;
      // Fusion weighs every candidate's similarity, so text hits the vector list missed get theirs too.
      const inVector = new Set(vector.map((v) => v.rid));
      const missing = text.filter((t) => !inVector.has(t.rid));
      if (missing.length > 0)
        extraSimilarity = this.vectors.similarities(
          scope.tenantId,
          query.embedding,
          query.embedding_model,
          missing,
          query.now,
        );
    }
    const rids = [...new Set([...text.map((t) => t.rid), ...vector.map((v) => v.rid)])];
    const rows =
      rids.length === 0
        ? []
        : memoryRows(
            this.#sql.get(
              `SELECT ${MEMORY_COLUMNS} FROM json_each(?) j CROSS JOIN memories m ON m.rid = j.value`,
            ),
            JSON.stringify(rids),
          );
    const idByRid = new Map<number, string>();
    const memories = new Map<string, Memory>();
    for (const row of rows) {
      const [rid, id] = row;
      idByRid.set(rid, id);
      memories.set(id, rowToMemory(row));
    }
    return {
      text: text.flatMap((t) => {
        const id = idByRid.get(t.rid);
        return id ? [{ id, score: t.bm25 }] : [];
      }),
      vector: vector.flatMap((v) => {
        const id = idByRid.get(v.rid);
        return id ? [{ id, similarity: v.similarity }] : [];
      }),
      similarity: new Map(
        [...vector, ...extraSimilarity].flatMap((v) => {
          const id = idByRid.get(v.rid);
          return id ? [[id, v.similarity] as const] : [];
        }),
      ),
      vector_search: mode,
      memories,
    };
  }

  async usage(scope: RequestScope): Promise<{ memories: number; bytes: number }> {
    const row = this.#sql
      .get(
        `SELECT count(*) AS n, coalesce(sum(length(CAST(content AS BLOB)) + length(CAST(metadata AS BLOB))), 0) AS b
         FROM memories WHERE tenant_id = ? AND deleted_at IS NULL`,
      )
      .get(scope.tenantId) as { n: number; b: number };
    return { memories: row.n, bytes: row.b };
  }

  /** Records that recall returned these memories; written in batches (see SqliteAccessCounts). */
  async touch(scope: RequestScope, ids: string[], now: string): Promise<void> {
    this.#access.add(scope.tenantId, ids, now);
  }

  /** Writes every pending access count now, waiting for the write lock (closing calls this). */
  flushTouches(): void {
    this.#access.flush();
  }

  async overview(
    scope: RequestScope,
    options: Parameters<MemoryStore['overview']>[1],
  ): Promise<{ important: Memory[]; recent: Memory[]; total: number }> {
    this.#access.tryFlush();
    // Only what holds now: no fact whose validity ended (or has not begun), none superseded.
    const base = liveMemoryWhere(scope.tenantId, options.now, { valid_at: options.now });
    const projectSql = options.project === null ? 'm.project IS NULL' : 'm.project = ?';
    const params = options.project === null ? base.params : [...base.params, options.project];
    const where = `${base.sql} AND ${projectSql}`;
    const read = this.#db.transaction(() => {
      const important = memoryRows(
        this.#sql.get(
          `SELECT ${MEMORY_COLUMNS} FROM memories m WHERE ${where}
           ORDER BY (m.type IN (SELECT value FROM json_each(?))) DESC, m.importance DESC, m.created_at DESC
           LIMIT ?`,
        ),
        ...params,
        JSON.stringify(options.priorityTypes),
        options.limit,
      );
      const recent = memoryRows(
        this.#sql.get(
          `SELECT ${MEMORY_COLUMNS} FROM memories m WHERE ${where} ORDER BY m.created_at DESC, m.rid DESC LIMIT ?`,
        ),
        ...params,
        options.limit,
      );
      const { n } = this.#sql.get(`SELECT count(*) AS n FROM memories m WHERE ${where}`).get(...params) as {
        n: number;
      };
      const shown = (r: (typeof important)[number]) => this.#access.overlay(scope.tenantId, rowToMemory(r));
      return { important: important.map(shown), recent: recent.map(shown), total: n };
    });
    return read.deferred();
  }
}
