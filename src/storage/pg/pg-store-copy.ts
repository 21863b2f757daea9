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

const VERSION_FIELDS = `tenant_id, memory_id, version, content, type, tags, metadata, importance, valid_from,
  valid_to, recorded_from, recorded_to, change`;

import type { PgDatabase } from './pg-database.js';
import { PG_MEMORY_FROM } from './pg-memory-rows.js';
import { writeVectors } from './pg-vector-index.js';

/** The memories table's columns a copy carries (the tier and score are memory_tiers': see importMemories). */
const MEMORY_COLUMNS = `id, tenant_id, project, session_id, key, content, content_hash, type, tags, metadata, importance,
  access_count, created_at, updated_at, accessed_at, expires_at, valid_from, valid_to,
  superseded_by, deleted_at, search_text, context_text, speaker_text`;

/** The element type of each column's parameter array, in MEMORY_COLUMNS order (tags: array literals). */
const COLUMN_TYPES = [
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'jsonb',
  'float8',
  'int',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
] as const;

const COLUMN_NAMES = MEMORY_COLUMNS.split(',').map((c) => c.trim());

/**
 * A whole batch in one statement: one array per column, unnested in order (so rids follow the file's
 * order), every conflict (id, live key, live unkeyed content) skipped. The reworded hash, last, is not a
 * column of the copy: it is computed from the content.
 */
const REWORDED = COLUMN_TYPES.length + 1;
const INSERT_BATCH = `INSERT INTO memories (${MEMORY_COLUMNS}, reworded_hash)
  SELECT ${COLUMN_NAMES.map((c, i) => (c === 'tags' ? `c${i + 1}::text[]` : `c${i + 1}`)).join(', ')}, c${REWORDED}
  FROM unnest(${COLUMN_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}, $${REWORDED}::text[])
    WITH ORDINALITY AS x(${COLUMN_NAMES.map((_, i) => `c${i + 1}`).join(', ')}, c${REWORDED}, n)
  ORDER BY n
  ON CONFLICT DO NOTHING RETURNING id, rid`;

/** The embedding model the store's queue embeds with (see PgEmbeddingQueue.switchModel). */
const ACTIVE_MODEL_KEY = 'embedding_model';

/** A text[] element in PostgreSQL's array literal form. */
function arrayLiteral(values: readonly string[]): string {
  return `{${values.map((x) => `"${x.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
}

/** pgvector's binary form (`vector_send`): int16 dimensions, int16 unused, then the floats big-endian. */
function vectorFromBinary(bytes: Buffer): Float32Array {
  const dims = bytes.readInt16BE(0);
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) out[i] = bytes.readFloatBE(4 + i * 4);
  return out;
}

function filterValues(filter: TransferFilter | undefined): (string | null)[] {
  return [filter?.tenantId ?? null, filter?.project ?? null];
}

/**
 * Whole-store export and import on PostgreSQL (`brain store copy`, `brain export`, `brain import`).
 * `onImported` tells this process's caches and the other replicas (the change bus) what changed.
 */
export function pgStoreCopy(
  db: PgDatabase,
  onImported: (tenants: string[], vectors: number) => Promise<void>,
): StoreCopy {
  return {
    async counts(filter) {
      const { rows } = await db.query<{ m: string; s: string; k: string; a: string }>(
        `SELECT
           (SELECT count(*) FROM memories WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR project = $2)) AS m,
           (SELECT count(*) FROM sessions WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR project = $2)) AS s,
           (SELECT count(*) FROM api_keys WHERE $1::text IS NULL OR tenant_id = $1) AS k,
           (SELECT count(*) FROM audit_events WHERE $1::text IS NULL OR tenant_id = $1) AS a`,
        filterValues(filter),
        db.primary,
      );
      const r = rows[0];
      return {
        memories: Number(r?.m ?? 0),
        sessions: Number(r?.s ?? 0),
        apiKeys: Number(r?.k ?? 0),
        auditEvents: Number(r?.a ?? 0),
      };
    },
    async exportMemories(after, limit, filter) {
      // The vector in binary (vector_send): parsing pgvector's text form cost more than the rest of a row.
      const { rows } = await db.query<
        Omit<StoredMemory, 'embedding' | 'queued'> & { embedding: Buffer | null; queued: boolean }
      >(
        `SELECT ${COLUMN_NAMES.map((c) => `m.${c}`).join(', ')}, coalesce(mt.storage_tier, 'hot') AS storage_tier,
           coalesce(mt.memory_score, 0.5) AS memory_score, e.model AS embedding_model,
           vector_send(e.embedding) AS embedding, (q.rid IS NOT NULL) AS queued
         FROM ${PG_MEMORY_FROM} LEFT JOIN memory_embeddings e ON e.rid = m.rid
           LEFT JOIN embedding_queue q ON q.rid = m.rid
         WHERE ($1::text IS NULL OR m.id > $1) AND ($2::text IS NULL OR m.tenant_id = $2)
           AND ($3::text IS NULL OR m.project = $3)
         ORDER BY m.id LIMIT $4`,
        [after, ...filterValues(filter), limit],
        db.primary,
      );
      return rows.map((r) => ({
        ...r,
        embedding: r.embedding === null ? null : vectorFromBinary(r.embedding),
      }));
    },
    async exportSessions(after, limit, filter) {
      const { rows } = await db.query<StoredSession>(
        `SELECT tenant_id, id, project, client, created_at, last_seen_at FROM sessions
         WHERE ($1::text IS NULL OR (tenant_id, id) > ($1, $2)) AND ($3::text IS NULL OR tenant_id = $3)
           AND ($4::text IS NULL OR project = $4)
         ORDER BY tenant_id, id LIMIT $5`,
        [after?.tenant_id ?? null, after?.id ?? '', ...filterValues(filter), limit],
        db.primary,
      );
      return rows;
    },
    async exportApiKeys(after, limit, filter) {
      const { rows } = await db.query<ApiKeyRow>(
        `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE ($1::text IS NULL OR id > $1)
           AND ($2::text IS NULL OR tenant_id = $2) ORDER BY id LIMIT $3`,
        [after, filter?.tenantId ?? null, limit],
        db.primary,
      );
      return rows.map((r) => apiKeyView(apiKeyFromRow(r)));
    },
    async exportAuditEvents(after, limit, filter) {
      const { rows } = await db.query<AuditRow>(
        `SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE ($1::text IS NULL OR id > $1)
           AND ($2::text IS NULL OR tenant_id = $2) ORDER BY id LIMIT $3`,
        [after, filter?.tenantId ?? null, limit],
        db.primary,
      );
      return rows.map(auditFromRow);
    },
    async importMemories(batch) {
      if (batch.length === 0) return { written: 0, existing: 0, duplicates: 0 };
      const result = await db.transaction(async (client) => {
        const params = COLUMN_NAMES.map((c) =>
          batch.map((m) => {
            const v = (m as unknown as Record<string, unknown>)[c];
            if (c === 'tags') return arrayLiteral(v as string[]);
            return c === 'metadata' ? JSON.stringify(v) : v;
          }),
        );
        params.push(batch.map((m) => rewordedHash(m.content)));
        const { rows } = await client.query<{ id: string; rid: string }>(INSERT_BATCH, params);
        const rid = new Map(rows.map((r) => [r.id, r.rid]));
        const skipped = batch.filter((m) => !rid.has(m.id)).map((m) => m.id);
        let existing = 0;
        if (skipped.length > 0) {
          const found = await client.query('SELECT 1 FROM memories WHERE id = ANY($1::text[])', [skipped]);
          existing = found.rowCount ?? 0;
        }
        const written = batch.filter((m) => rid.has(m.id));
        // Tier rows for the memories not hot with the default score (a memory without one is).
        const tiered = written.filter((m) => m.storage_tier !== 'hot' || m.memory_score !== 0.5);
        if (tiered.length > 0)
          await client.query(
            `INSERT INTO memory_tiers (rid, storage_tier, memory_score, tier_access_count)
             SELECT unnest($1::bigint[]), unnest($2::text[]), unnest($3::float8[]), 0`,
            [
              tiered.map((m) => rid.get(m.id)),
              tiered.map((m) => m.storage_tier),
              tiered.map((m) => m.memory_score),
            ],
          );
        const vectors = written.filter((m) => m.embedding && m.embedding_model);
        if (vectors.length > 0)
          await writeVectors(
            db,
            client,
            vectors.map((m) => ({
              rid: rid.get(m.id) as string,
              tenantId: m.tenant_id,
              model: m.embedding_model as string,
              vector: m.embedding as Float32Array,
            })),
          );
        const meta = await client.query<{ value: string }>('SELECT value FROM brain_meta WHERE key = $1', [
          ACTIVE_MODEL_KEY,
        ]);
        const active = meta.rows[0]?.value;
        // A vector of another model (or none) is embedded again by this store's queue, as after a switch.
        const queued = written
          .filter(
            (m) =>
              m.queued ||
              (m.deleted_at === null &&
                m.content_hash !== '' &&
                active !== undefined &&
                m.embedding_model !== active),
          )
          .map((m) => rid.get(m.id));
        if (queued.length > 0)
          await client.query(
            'INSERT INTO embedding_queue (rid) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING',
            [queued],
          );
        return {
          written: rows.length,
          existing,
          duplicates: batch.length - rows.length - existing,
          vectors: vectors.length,
        };
      });
      if (result.written > 0) await onImported([...new Set(batch.map((m) => m.tenant_id))], result.vectors);
      return { written: result.written, existing: result.existing, duplicates: result.duplicates };
    },
    async importSessions(batch) {
      if (batch.length === 0) return 0;
      const { rowCount } = await db.query(
        `INSERT INTO sessions (tenant_id, id, project, client, created_at, last_seen_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING`,
        [
          batch.map((s) => s.tenant_id),
          batch.map((s) => s.id),
          batch.map((s) => s.project),
          batch.map((s) => s.client),
          batch.map((s) => s.created_at),
          batch.map((s) => s.last_seen_at),
        ],
        db.primary,
      );
      return rowCount ?? 0;
    },
    async importApiKeys(batch) {
      if (batch.length === 0) return 0;
      const { rowCount } = await db.query(
        `INSERT INTO api_keys (${API_KEY_COLUMNS})
         SELECT * FROM unnest(${API_KEY_COLUMNS.split(',')
           .map((_, i) => `$${i + 1}::text[]`)
           .join(', ')}) ON CONFLICT DO NOTHING`,
        columnsOf(batch.map(apiKeyValues), 9),
        db.primary,
      );
      return rowCount ?? 0;
    },
    async importAuditEvents(batch: AuditEvent[]) {
      if (batch.length === 0) return 0;
      // Unnested in order, so `seq` follows the batch's order (as PgAuditStore.append).
      const { rowCount } = await db.query(
        `INSERT INTO audit_events (${AUDIT_COLUMNS})
         SELECT id, at, principal, tenant_id, action, target, outcome, details
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
           WITH ORDINALITY AS e(id, at, principal, tenant_id, action, target, outcome, details, n)
         ORDER BY n ON CONFLICT DO NOTHING`,
        columnsOf(batch.map(auditValues), 8),
        db.primary,
      );
      return rowCount ?? 0;
    },
    async countVersions() {
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM memory_versions',
        [],
        db.primary,
      );
      return Number(rows[0]?.n ?? 0);
    },
    async exportVersions(after, limit, filter) {
      // A version goes with its memory: of the filter's tenant and project.
      const { rows } = await db.query<StoredVersion>(
        `SELECT ${VERSION_FIELDS.replace(/(\w+)/g, 'v.$1')} FROM memory_versions v JOIN memories m ON m.id = v.memory_id
         WHERE ($1::text IS NULL OR (v.tenant_id, v.memory_id, v.version) > ($1, $2, $3))
           AND ($4::text IS NULL OR m.tenant_id = $4) AND ($5::text IS NULL OR m.project = $5)
         ORDER BY v.tenant_id, v.memory_id, v.version LIMIT $6`,
        [
          after?.tenant_id ?? null,
          after?.memory_id ?? '',
          after?.version ?? 0,
          ...filterValues(filter),
          limit,
        ],
        db.primary,
      );
      return rows;
    },
    async importVersions(batch) {
      if (batch.length === 0) return 0;
      const col = <T>(f: (v: StoredVersion) => T) => batch.map(f);
      // Only under a memory this store holds, of the same tenant (the foreign key would refuse it anyway).
      const { rowCount } = await db.query(
        `INSERT INTO memory_versions (${VERSION_FIELDS})
         SELECT v.tenant_id, v.memory_id, v.version, v.content, v.type,
           ARRAY(SELECT jsonb_array_elements_text(v.tags)), v.metadata, v.importance, v.valid_from, v.valid_to,
           v.recorded_from, v.recorded_to, v.change
         FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[],
             $8::float8[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
           AS v(tenant_id, memory_id, version, content, type, tags, metadata, importance, valid_from, valid_to,
             recorded_from, recorded_to, change)
         WHERE EXISTS (SELECT 1 FROM memories m WHERE m.id = v.memory_id AND m.tenant_id = v.tenant_id)
         ON CONFLICT DO NOTHING`,
        [
          col((v) => v.tenant_id),
          col((v) => v.memory_id),
          col((v) => v.version),
          col((v) => v.content),
          col((v) => v.type),
          col((v) => JSON.stringify(v.tags)),
          col((v) => JSON.stringify(v.metadata)),
          col((v) => v.importance),
          col((v) => v.valid_from),
          col((v) => v.valid_to),
          col((v) => v.recorded_from),
          col((v) => v.recorded_to),
          col((v) => v.change),
        ],
        db.primary,
      );
      return rowCount ?? 0;
    },
  };
}

/** Rows of values → one array per column. */
function columnsOf(rows: (string | null)[][], width: number): (string | null)[][] {
  const columns: (string | null)[][] = Array.from({ length: width }, () => []);
  for (const row of rows)
    row.forEach((value, i) => {
      columns[i]?.push(value);
    });
  return columns;
}
