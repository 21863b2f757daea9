import type { StoreCopy, StoredMemory, StoredSession } from '../storage.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { blobToInt8, vectorToBlob } from './sqlite-memory-rows.js';

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
  rid: number;
  embedding_model: string | null;
  embedding: Buffer | null;
  queued: number;
};

/**
 * Whole-store export and import on SQLite (`brain store copy`). Imports keep the full-text index and the
 * tenant statistics in step (the rows arrive with their tokens), and skip ids already present.
 */
export function sqliteStoreCopy(db: SqliteDatabase): StoreCopy {
  const exportRows = db.prepare(
    `SELECT m.rid, ${COLUMNS.map((c) => `m.${c}`).join(', ')}, e.model AS embedding_model, e.embedding,
       (q.rid IS NOT NULL) AS queued
     FROM memories m LEFT JOIN memory_embeddings e ON e.rid = m.rid LEFT JOIN embedding_queue q ON q.rid = m.rid
     WHERE (? IS NULL OR m.id > ?) ORDER BY m.id LIMIT ?`,
  );
  const insert = db.prepare(
    `INSERT OR IGNORE INTO memories (${COLUMNS.join(', ')}, change_seq)
     VALUES (${COLUMNS.map(() => '?').join(', ')},
       (SELECT coalesce(max(change_seq), 0) + 1 FROM memories WHERE tenant_id = ?))`,
  );
  const insertTag = db.prepare('INSERT OR IGNORE INTO memory_tags (tag, rid) VALUES (?, ?)');
  const insertFts = db.prepare(
    'INSERT INTO memories_fts (rowid, search_text, context_text) VALUES (?, ?, ?)',
  );
  const insertVector = db.prepare(
    'INSERT OR IGNORE INTO memory_embeddings (rid, model, embedding) VALUES (?, ?, ?)',
  );
  const enqueue = db.prepare('INSERT OR IGNORE INTO embedding_queue (rid) VALUES (?)');
  const stats = db.prepare(
    `INSERT INTO search_stats (tenant_id, documents, own_chars, context_chars) VALUES (?, 1, ?, ?)
     ON CONFLICT (tenant_id) DO UPDATE SET documents = documents + 1,
       own_chars = own_chars + excluded.own_chars, context_chars = context_chars + excluded.context_chars`,
  );
  const importMany = db.transaction((rows: StoredMemory[]): number => {
    let written = 0;
    for (const m of rows) {
      const values = COLUMNS.map((c) => {
        const v = m[c];
        return c === 'tags' || c === 'metadata' ? JSON.stringify(v) : v;
      });
      const info = insert.run(...values, m.tenant_id);
      if (info.changes === 0) continue;
      written++;
      const rid = Number(info.lastInsertRowid);
      if (m.deleted_at === null) {
        for (const tag of m.tags) insertTag.run(tag, rid);
        insertFts.run(rid, m.search_text, m.context_text);
        stats.run(m.tenant_id, m.search_text.length, m.context_text.length);
      }
      if (m.embedding && m.embedding_model)
        insertVector.run(rid, m.embedding_model, vectorToBlob(m.embedding));
      if (m.queued) enqueue.run(rid);
    }
    return written;
  });
  const importSessions = db.transaction((rows: StoredSession[]): number => {
    const statement = db.prepare(
      `INSERT OR IGNORE INTO sessions (tenant_id, id, project, client, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    let written = 0;
    for (const s of rows)
      written += statement.run(s.tenant_id, s.id, s.project, s.client, s.created_at, s.last_seen_at).changes;
    return written;
  });
  return {
    async counts() {
      const row = db
        .prepare(
          'SELECT (SELECT count(*) FROM memories) AS memories, (SELECT count(*) FROM sessions) AS sessions',
        )
        .get() as { memories: number; sessions: number };
      return row;
    },
    async exportMemories(after, limit) {
      return (exportRows.all(after, after, limit) as Raw[])
        .map((r): StoredMemory => {
          const int8 = r.embedding ? blobToInt8(r.embedding) : null;
          return {
            ...(r as unknown as StoredMemory),
            tags: JSON.parse(r.tags as string) as string[],
            metadata: JSON.parse(r.metadata as string) as Record<string, unknown>,
            embedding: int8 ? Float32Array.from(int8, (v) => v / 127) : null,
            embedding_model: r.embedding_model,
            queued: r.queued === 1,
          };
        })
        .map(({ ...m }) => {
          delete (m as { rid?: number }).rid;
          return m;
        });
    },
    async exportSessions(after, limit) {
      return db
        .prepare(
          `SELECT tenant_id, id, project, client, created_at, last_seen_at FROM sessions
           WHERE ? IS NULL OR (tenant_id, id) > (?, ?) ORDER BY tenant_id, id LIMIT ?`,
        )
        .all(after?.tenant_id ?? null, after?.tenant_id ?? '', after?.id ?? '', limit) as StoredSession[];
    },
    async importMemories(rows) {
      return importMany.immediate(rows);
    },
    async importSessions(rows) {
      return importSessions.immediate(rows);
    },
  };
}
