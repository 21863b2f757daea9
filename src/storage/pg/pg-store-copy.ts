import type { StoreCopy, StoredMemory, StoredSession } from '../storage.js';
import type { PgDatabase } from './pg-database.js';
import { parseVector } from './pg-memory-rows.js';
import { writeVectors } from './pg-vector-index.js';

const MEMORY_COLUMNS = `id, tenant_id, project, session_id, key, content, content_hash, type, tags, metadata, importance,
  storage_tier, memory_score, access_count, created_at, updated_at, accessed_at, expires_at, valid_from, valid_to,
  superseded_by, deleted_at, search_text, context_text, speaker_text`;

/** Whole-store export and import on PostgreSQL (`brain store copy`). */
export function pgStoreCopy(
  db: PgDatabase,
  onImported: (tenants: string[], vectors: number) => Promise<void>,
): StoreCopy {
  return {
    async counts() {
      const { rows } = await db.query<{ m: string; s: string }>(
        'SELECT (SELECT count(*) FROM memories) AS m, (SELECT count(*) FROM sessions) AS s',
        [],
        db.primary,
      );
      return { memories: Number(rows[0]?.m ?? 0), sessions: Number(rows[0]?.s ?? 0) };
    },
    async exportMemories(after, limit) {
      const { rows } = await db.query<
        Omit<StoredMemory, 'embedding' | 'queued'> & { embedding: string | null; queued: boolean }
      >(
        `SELECT ${MEMORY_COLUMNS.split(',')
          .map((c) => `m.${c.trim()}`)
          .join(', ')}, e.model AS embedding_model,
           e.embedding::text AS embedding, (q.rid IS NOT NULL) AS queued
         FROM memories m LEFT JOIN memory_embeddings e ON e.rid = m.rid LEFT JOIN embedding_queue q ON q.rid = m.rid
         WHERE ($1::text IS NULL OR m.id > $1) ORDER BY m.id LIMIT $2`,
        [after, limit],
        db.primary,
      );
      return rows.map((r) => ({ ...r, embedding: r.embedding === null ? null : parseVector(r.embedding) }));
    },
    async exportSessions(after, limit) {
      const { rows } = await db.query<StoredSession>(
        `SELECT tenant_id, id, project, client, created_at, last_seen_at FROM sessions
         WHERE $1::text IS NULL OR (tenant_id, id) > ($1, $2) ORDER BY tenant_id, id LIMIT $3`,
        [after?.tenant_id ?? null, after?.id ?? '', limit],
        db.primary,
      );
      return rows;
    },
    async importMemories(batch) {
      if (batch.length === 0) return 0;
      const written = await db.transaction(async (client) => {
        const cols = MEMORY_COLUMNS.split(',').map((c) => c.trim());
        const values = batch.map((m) =>
          cols.map((c) => {
            const v = (m as unknown as Record<string, unknown>)[c];
            return c === 'metadata' ? JSON.stringify(v) : v;
          }),
        );
        const placeholders = values
          .map((row, i) => `(${row.map((_, j) => `$${i * cols.length + j + 1}`).join(', ')})`)
          .join(', ');
        const { rows } = await client.query<{ id: string; rid: string }>(
          `INSERT INTO memories (${cols.join(', ')}) VALUES ${placeholders} ON CONFLICT DO NOTHING RETURNING id, rid`,
          values.flat(),
        );
        const rid = new Map(rows.map((r) => [r.id, r.rid]));
        const vectors = batch.filter((m) => rid.has(m.id) && m.embedding && m.embedding_model);
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
        const queued = batch.filter((m) => rid.has(m.id) && m.queued).map((m) => rid.get(m.id));
        if (queued.length > 0)
          await client.query(
            'INSERT INTO embedding_queue (rid) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING',
            [queued],
          );
        return rows.length;
      });
      await onImported([...new Set(batch.map((m) => m.tenant_id))], batch.filter((m) => m.embedding).length);
      return written;
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
  };
}
