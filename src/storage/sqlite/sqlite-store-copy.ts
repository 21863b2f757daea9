import { type Logger, silentLogger } from '../../core/logger.js';
import type { AuditEvent } from '../../modules/audit/audit-store.js';
import { apiKeyView } from '../../modules/auth/api-keys.js';
import { rewordedHash } from '../../modules/memory/content-hash.js';
import {
  API_KEY_COLUMNS,
  type ApiKeyRow,
  AUDIT_COLUMNS,
  type AuditRow,
  apiKeyFromRow,
  apiKeyValues,
  auditFromRow,
  auditValues,
} from '../auth-rows.js';
import type { StoreCopy, StoredMemory, StoredSession, StoredVersion, TransferFilter } from '../storage.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { blobToInt8, vectorToBlob } from './sqlite-memory-rows.js';
import { ftsValues, INSERT_FTS_SQL } from './sqlite-search-text.js';
import { guardStoreMethods } from './sqlite-store-guard.js';

const COLUMNS = [
  'id',
  'tenant_id',
  'project',
  'session_id',
  'key',
  'content',
  'content_hash',
  'type',
  'tags',
  'metadata',
  'importance',
  'storage_tier',
  'memory_score',
  'access_count',
  'created_at',
  'updated_at',
  'accessed_at',
  'expires_at',
  'valid_from',
  'valid_to',
  'superseded_by',
  'deleted_at',
  'search_text',
  'context_text',
  'speaker_text',
] as const;

type Raw = Record<(typeof COLUMNS)[number], unknown> & {
  embedding_model: string | null;
  embedding: Buffer | null;
  queued: number;
};

/** The embedding model the store's queue embeds with (see SqliteEmbeddingQueue.switchModel). */
const ACTIVE_MODEL_KEY = 'embedding_model';

/** `(? IS NULL OR col = ?)` pairs of a filter, and their parameters. */
function filterParams(filter: TransferFilter | undefined): unknown[] {
  const tenant = filter?.tenantId ?? null;
  const project = filter?.project ?? null;
  return [tenant, tenant, project, project];
}

const FILTERED = '(? IS NULL OR m.tenant_id = ?) AND (? IS NULL OR m.project = ?)';
const TENANT_ONLY = '(? IS NULL OR tenant_id = ?)';

/** int8 back to floats of the same direction (a loop: Float32Array.from with a callback was 10x slower). */
function dequantize(int8: Int8Array): Float32Array {
  const out = new Float32Array(int8.length);
  for (let i = 0; i < int8.length; i++) out[i] = (int8[i] as number) / 127;
  return out;
}

function fromRaw(r: Raw): StoredMemory {
  const int8 = r.embedding ? blobToInt8(r.embedding) : null;
  return {
    ...(r as unknown as StoredMemory),
    tags: JSON.parse(r.tags as string) as string[],
    metadata: JSON.parse(r.metadata as string) as Record<string, unknown>,
    embedding: int8 ? dequantize(int8) : null,
    embedding_model: r.embedding_model,
    queued: r.queued === 1,
  };
}

/**
 * Whole-store export and import on SQLite (`brain store copy`, `brain export`, `brain import`). Imports
 * keep the full-text index, the tag table and the tenant statistics in step (the rows arrive with their
 * tokens), give each tenant's rows of a batch one new change_seq (so a running server's vector index
 * catches up on them), and skip ids already present and rows a live memory's key or content holds.
 */
export function sqliteStoreCopy(db: SqliteDatabase, options: { logger?: Logger } = {}): StoreCopy {
  const exportRows = db.prepare(
    `SELECT ${COLUMNS.map((c) => `m.${c}`).join(', ')}, e.model AS embedding_model, e.embedding,
       (q.rid IS NOT NULL) AS queued
     FROM memories m LEFT JOIN memory_embeddings e ON e.rid = m.rid LEFT JOIN embedding_queue q ON q.rid = m.rid
     WHERE (? IS NULL OR m.id > ?) AND ${FILTERED} ORDER BY m.id LIMIT ?`,
  );
  // An unkeyed live row is not stored beside a live memory with its content (the memory store's dedupe;
  // PostgreSQL's unique index): the EXISTS reads the memories_hash index.
  const insert = db.prepare(
    `INSERT OR IGNORE INTO memories (${COLUMNS.join(', ')}, change_seq, reworded_hash)
     SELECT ${COLUMNS.map(() => '?').join(', ')}, ?, ?
     WHERE NOT (? AND EXISTS (SELECT 1 FROM memories d WHERE d.tenant_id = ? AND coalesce(d.project, '') = ?
       AND d.content_hash = ? AND d.key IS NULL AND d.deleted_at IS NULL AND d.superseded_by IS NULL))`,
  );
  const exists = db.prepare('SELECT 1 FROM memories WHERE id = ?').pluck();
  const nextSeq = db
    .prepare('SELECT coalesce(max(change_seq), 0) + 1 FROM memories WHERE tenant_id = ?')
    .pluck();
  const activeModel = db.prepare('SELECT value FROM brain_meta WHERE key = ?').pluck();
  const insertTag = db.prepare('INSERT OR IGNORE INTO memory_tags (tag, rid) VALUES (?, ?)');
  const insertFts = db.prepare(INSERT_FTS_SQL);
  const insertVector = db.prepare(
    'INSERT OR IGNORE INTO memory_embeddings (rid, model, embedding) VALUES (?, ?, ?)',
  );
  const enqueue = db.prepare('INSERT OR IGNORE INTO embedding_queue (rid) VALUES (?)');
  const stats = db.prepare(
    `INSERT INTO search_stats (tenant_id, documents, own_chars, context_chars) VALUES (?, ?, ?, ?)
     ON CONFLICT (tenant_id) DO UPDATE SET documents = documents + excluded.documents,
       own_chars = own_chars + excluded.own_chars, context_chars = context_chars + excluded.context_chars`,
  );
  const importMany = db.transaction((rows: StoredMemory[]) => {
    const counts = { written: 0, existing: 0, duplicates: 0 };
    const active = activeModel.get(ACTIVE_MODEL_KEY) as string | undefined;
    const seqs = new Map<string, number>();
    const added = new Map<string, { documents: number; own: number; context: number }>();
    for (const m of rows) {
      let seq = seqs.get(m.tenant_id);
      if (seq === undefined) {
        seq = nextSeq.get(m.tenant_id) as number;
        seqs.set(m.tenant_id, seq);
      }
      const values = COLUMNS.map((c) => {
        const v = m[c];
        return c === 'tags' || c === 'metadata' ? JSON.stringify(v) : v;
      });
      const unkeyedLive = m.key === null && m.deleted_at === null && m.superseded_by === null ? 1 : 0;
      const info = insert.run(
        ...values,
        seq,
        rewordedHash(m.content),
        unkeyedLive,
        m.tenant_id,
        m.project ?? '',
        m.content_hash,
      );
      if (info.changes === 0) {
        if (exists.get(m.id) !== undefined) counts.existing++;
        else counts.duplicates++;
        continue;
      }
      counts.written++;
      const rid = Number(info.lastInsertRowid);
      const live = m.deleted_at === null;
      if (live) {
        for (const tag of m.tags) insertTag.run(tag, rid);
        insertFts.run(...ftsValues(rid, m.tenant_id, m.search_text, m.context_text));
        const sum = added.get(m.tenant_id) ?? { documents: 0, own: 0, context: 0 };
        sum.documents++;
        sum.own += m.search_text.length;
        sum.context += m.context_text.length;
        added.set(m.tenant_id, sum);
      }
      const vector = m.embedding && m.embedding_model ? m.embedding : null;
      if (vector) insertVector.run(rid, m.embedding_model, vectorToBlob(vector));
      // A vector of another model (or none) is embedded again by this store's queue, as after a switch.
      const stale = live && m.content_hash !== '' && active !== undefined && m.embedding_model !== active;
      if (m.queued || stale) enqueue.run(rid);
    }
    for (const [tenant, sum] of added) stats.run(tenant, sum.documents, sum.own, sum.context);
    return counts;
  });
  const insertSession = db.prepare(
    `INSERT OR IGNORE INTO sessions (tenant_id, id, project, client, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`,
  );
  const importSessions = db.transaction((rows: StoredSession[]): number => {
    let written = 0;
    for (const s of rows)
      written += insertSession.run(
        s.tenant_id,
        s.id,
        s.project,
        s.client,
        s.created_at,
        s.last_seen_at,
      ).changes;
    return written;
  });
  const insertKey = db.prepare(
    `INSERT OR IGNORE INTO api_keys (${API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const importKeys = db.transaction((rows: Parameters<StoreCopy['importApiKeys']>[0]): number => {
    let written = 0;
    for (const k of rows) written += insertKey.run(...apiKeyValues(k)).changes;
    return written;
  });
  const insertEvent = db.prepare(
    `INSERT OR IGNORE INTO audit_events (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const importEvents = db.transaction((rows: AuditEvent[]): number => {
    let written = 0;
    for (const e of rows) written += insertEvent.run(...auditValues(e)).changes;
    return written;
  });
  const exportKeys = db.prepare(
    `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE (? IS NULL OR id > ?) AND ${TENANT_ONLY} ORDER BY id LIMIT ?`,
  );
  const exportEvents = db.prepare(
    `SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE (? IS NULL OR id > ?) AND ${TENANT_ONLY} ORDER BY id LIMIT ?`,
  );
  const VERSION_FIELDS = `tenant_id, memory_id, version, content, type, tags, metadata, importance, valid_from,
    valid_to, recorded_from, recorded_to, change`;
  // A version goes with its memory: of the filter's tenant and project.
  const exportVersionRows = db.prepare(
    `SELECT ${VERSION_FIELDS.replace(/(\w+)/g, 'v.$1')} FROM memory_versions v JOIN memories m ON m.id = v.memory_id
     WHERE (? IS NULL OR (v.tenant_id, v.memory_id, v.version) > (?, ?, ?)) AND ${FILTERED}
     ORDER BY v.tenant_id, v.memory_id, v.version LIMIT ?`,
  );
  // Only under a memory this store holds, of the same tenant (the foreign key would refuse it anyway).
  const insertVersion = db.prepare(
    `INSERT OR IGNORE INTO memory_versions (${VERSION_FIELDS})
     SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM memories WHERE id = ? AND tenant_id = ?)`,
  );
  const importVersions = db.transaction((rows: StoredVersion[]): number => {
    let written = 0;
    for (const v of rows)
      written += insertVersion.run(
        v.tenant_id,
        v.memory_id,
        v.version,
        v.content,
        v.type,
        JSON.stringify(v.tags),
        JSON.stringify(v.metadata),
        v.importance,
        v.valid_from,
        v.valid_to,
        v.recorded_from,
        v.recorded_to,
        v.change,
        v.memory_id,
        v.tenant_id,
      ).changes;
    return written;
  });
  const copy: StoreCopy = {
    async counts(filter) {
      const [tenant, , project] = filterParams(filter);
      const row = db
        .prepare(
          `SELECT (SELECT count(*) FROM memories m WHERE ${FILTERED}) AS memories,
             (SELECT count(*) FROM sessions m WHERE ${FILTERED}) AS sessions,
             (SELECT count(*) FROM api_keys WHERE ${TENANT_ONLY}) AS apiKeys,
             (SELECT count(*) FROM audit_events WHERE ${TENANT_ONLY}) AS auditEvents`,
        )
        .get(
          tenant,
          tenant,
          project,
          project,
          tenant,
          tenant,
          project,
          project,
          tenant,
          tenant,
          tenant,
          tenant,
        ) as {
        memories: number;
        sessions: number;
        apiKeys: number;
        auditEvents: number;
      };
      return row;
    },
    async exportMemories(after, limit, filter) {
      return (exportRows.all(after, after, ...filterParams(filter), limit) as Raw[]).map(fromRaw);
    },
    async exportSessions(after, limit, filter) {
      return db
        .prepare(
          `SELECT tenant_id, id, project, client, created_at, last_seen_at FROM sessions m
           WHERE (? IS NULL OR (tenant_id, id) > (?, ?)) AND ${FILTERED} ORDER BY tenant_id, id LIMIT ?`,
        )
        .all(
          after?.tenant_id ?? null,
          after?.tenant_id ?? '',
          after?.id ?? '',
          ...filterParams(filter),
          limit,
        ) as StoredSession[];
    },
    async exportApiKeys(after, limit, filter) {
      const tenant = filter?.tenantId ?? null;
      return (exportKeys.all(after, after, tenant, tenant, limit) as ApiKeyRow[]).map((r) =>
        apiKeyView(apiKeyFromRow(r)),
      );
    },
    async exportAuditEvents(after, limit, filter) {
      const tenant = filter?.tenantId ?? null;
      return (exportEvents.all(after, after, tenant, tenant, limit) as AuditRow[]).map(auditFromRow);
    },
    async importMemories(rows) {
      return importMany.immediate(rows);
    },
    async importSessions(rows) {
      return importSessions.immediate(rows);
    },
    async importApiKeys(rows) {
      return importKeys.immediate(rows);
    },
    async importAuditEvents(rows) {
      return importEvents.immediate(rows);
    },
    async countVersions() {
      return db.prepare('SELECT count(*) FROM memory_versions').pluck().get() as number;
    },
    async exportVersions(after, limit, filter) {
      const rows = exportVersionRows.all(
        after?.tenant_id ?? null,
        after?.tenant_id ?? '',
        after?.memory_id ?? '',
        after?.version ?? 0,
        ...filterParams(filter),
        limit,
      ) as (Omit<StoredVersion, 'tags' | 'metadata'> & { tags: string; metadata: string })[];
      return rows.map((r) => ({
        ...r,
        tags: JSON.parse(r.tags) as string[],
        metadata: JSON.parse(r.metadata) as Record<string, unknown>,
      }));
    },
    async importVersions(rows) {
      return importVersions.immediate(rows);
    },
  };
  // A locked, full or damaged database gets its code and advice (STORAGE_BUSY, …), as every store's.
  guardStoreMethods<StoreCopy>(
    copy,
    {
      reads: [
        'counts',
        'exportMemories',
        'exportSessions',
        'exportApiKeys',
        'exportAuditEvents',
        'countVersions',
        'exportVersions',
      ],
      writes: ['importMemories', 'importSessions', 'importApiKeys', 'importAuditEvents', 'importVersions'],
    },
    { dbPath: db.name, logger: options.logger ?? silentLogger },
  );
  return copy;
}
