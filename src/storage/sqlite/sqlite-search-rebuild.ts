import type { ProgressListener, ReindexResult } from '../storage-integrity.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { ftsValues, INSERT_FTS_SQL, ownSearchText, speakerSearchText } from './sqlite-search-text.js';

/** Rows read (and written) per statement while walking the memories. */
const BATCH = 1000;

interface LiveRow {
  rid: number;
  tenant_id: string;
  session_id: string | null;
  content: string;
  tags: string;
  metadata: string;
  search_text: string;
  context_text: string;
  speaker_text: string;
}

/** A live memory with the search fields its text gives now (what migration 4's backfill computes). */
interface Computed {
  row: LiveRow;
  own: string;
  context: string;
  speaker: string;
}

function joined(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join(' ');
}

/**
 * Visits every live memory in (tenant, session, rid) order with its search fields computed from its
 * content, tags, metadata and session neighbours, the same way the store and migration 4 make them.
 * Reads a batch at a time (no iterator stays open, so `visit` may write).
 */
function walkLive(db: SqliteDatabase, visit: (c: Computed) => void, onProgress?: ProgressListener): number {
  const order = db
    .prepare('SELECT rid FROM memories WHERE deleted_at IS NULL ORDER BY tenant_id, session_id, rid')
    .pluck()
    .all() as number[];
  const read = db.prepare(
    `SELECT m.rid, m.tenant_id, m.session_id, m.content, m.tags, m.metadata, m.search_text, m.context_text,
       m.speaker_text FROM json_each(?) j JOIN memories m ON m.rid = j.value ORDER BY j.key`,
  );
  const same = (a: LiveRow | null, b: LiveRow | null) =>
    a !== null &&
    b !== null &&
    a.session_id !== null &&
    a.tenant_id === b.tenant_id &&
    a.session_id === b.session_id;
  let before: { row: LiveRow; own: string } | null = null;
  let current: { row: LiveRow; own: string } | null = null;
  const finish = (next: { row: LiveRow; own: string } | null) => {
    if (!current) return;
    const context = joined(
      same(before?.row ?? null, current.row) ? (before?.own ?? '') : '',
      same(current.row, next?.row ?? null) ? (next?.own ?? '') : '',
    );
    const metadata = JSON.parse(current.row.metadata) as Record<string, unknown>;
    visit({
      row: current.row,
      own: current.own,
      context,
      speaker: speakerSearchText(current.row.content, metadata),
    });
  };
  onProgress?.(0, order.length);
  for (let i = 0; i < order.length; i += BATCH) {
    const rows = read.all(JSON.stringify(order.slice(i, i + BATCH))) as LiveRow[];
    for (const row of rows) {
      const entry = { row, own: ownSearchText(row.content, JSON.parse(row.tags) as string[]) };
      finish(entry);
      before = current;
      current = entry;
    }
    onProgress?.(Math.min(i + BATCH, order.length), order.length);
  }
  finish(null);
  return order.length;
}

/** How many live memories hold search fields that their text no longer gives (`brain db check`). */
export function searchTextDrift(db: SqliteDatabase): { checked: number; rows: number } {
  let rows = 0;
  const checked = walkLive(db, (c) => {
    if (c.own !== c.row.search_text || c.context !== c.row.context_text || c.speaker !== c.row.speaker_text)
      rows++;
  });
  return { checked, rows };
}

/**
 * `brain db reindex` on SQLite, in one IMMEDIATE transaction (readers see the old index until it
 * commits): every live memory's search fields computed again and re-indexed from scratch, each tenant's
 * statistics counted again, the tag table rebuilt from the rows' tags, and vector rows that belong to no
 * memory (or a purged one), of a length their model does not have, or queue entries of missing rows,
 * removed (a live memory whose vector was dropped is queued again). Running it twice changes nothing.
 */
export function rebuildSearchText(
  db: SqliteDatabase,
  onProgress?: ProgressListener,
): Omit<ReindexResult, 'removedIndexFiles' | 'seconds'> {
  const rebuild = db.transaction(() => {
    db.exec("INSERT INTO memories_fts (memories_fts) VALUES ('delete-all'); DELETE FROM search_stats;");
    const update = db.prepare(
      'UPDATE memories SET search_text = ?, context_text = ?, speaker_text = ? WHERE rid = ?',
    );
    const index = db.prepare(INSERT_FTS_SQL);
    const stats = new Map<string, { documents: number; own: number; context: number }>();
    const memories = walkLive(
      db,
      (c) => {
        if (
          c.own !== c.row.search_text ||
          c.context !== c.row.context_text ||
          c.speaker !== c.row.speaker_text
        )
          update.run(c.own, c.context, c.speaker, c.row.rid);
        index.run(...ftsValues(c.row.rid, c.row.tenant_id, c.own, c.context));
        const s = stats.get(c.row.tenant_id) ?? { documents: 0, own: 0, context: 0 };
        s.documents++;
        s.own += c.own.length;
        s.context += c.context.length;
        stats.set(c.row.tenant_id, s);
      },
      onProgress,
    );
    const insertStats = db.prepare(
      'INSERT INTO search_stats (tenant_id, documents, own_chars, context_chars) VALUES (?, ?, ?, ?)',
    );
    for (const [tenant, s] of stats) insertStats.run(tenant, s.documents, s.own, s.context);
    rebuildTags(db);
    return { memories, ...repairVectors(db) };
  });
  return rebuild.immediate();
}

/** memory_tags holds exactly each memory's tags (the filter reads it). */
function rebuildTags(db: SqliteDatabase): void {
  db.exec(`
    DELETE FROM memory_tags WHERE NOT EXISTS (
      SELECT 1 FROM memories m, json_each(m.tags) j WHERE m.rid = memory_tags.rid AND j.value = memory_tags.tag);
    INSERT OR IGNORE INTO memory_tags (tag, rid)
      SELECT j.value, m.rid FROM memories m, json_each(m.tags) j WHERE m.content_hash <> '';
  `);
}

function repairVectors(db: SqliteDatabase): { vectors: number; removedOrphans: number } {
  let removed = 0;
  const run = (sql: string) => {
    removed += db.prepare(sql).run().changes;
  };
  run(
    'DELETE FROM memory_embeddings WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.rid = memory_embeddings.rid)',
  );
  run("DELETE FROM memory_embeddings WHERE rid IN (SELECT rid FROM memories WHERE content_hash = '')");
  run(
    'DELETE FROM embedding_queue WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.rid = embedding_queue.rid)',
  );
  // A model's vectors share one length; rows of another length (a damaged or foreign write) are
  // dropped and their memories queued for a new vector.
  const wrong = db
    .prepare(
      `WITH lengths AS (SELECT model, length(embedding) AS len, count(*) AS n FROM memory_embeddings GROUP BY 1, 2),
            usual AS (SELECT model, len FROM lengths l WHERE n = (SELECT max(n) FROM lengths o WHERE o.model = l.model)
                      GROUP BY model)
       SELECT e.rid FROM memory_embeddings e JOIN usual u ON u.model = e.model WHERE length(e.embedding) <> u.len`,
    )
    .pluck()
    .all() as number[];
  if (wrong.length > 0) {
    const rids = JSON.stringify(wrong);
    removed += db
      .prepare('DELETE FROM memory_embeddings WHERE rid IN (SELECT value FROM json_each(?))')
      .run(rids).changes;
    db.prepare(
      `INSERT OR IGNORE INTO embedding_queue (rid) SELECT m.rid FROM memories m
       WHERE m.rid IN (SELECT value FROM json_each(?)) AND m.deleted_at IS NULL`,
    ).run(rids);
  }
  const vectors = db.prepare('SELECT count(*) FROM memory_embeddings').pluck().get() as number;
  return { vectors, removedOrphans: removed };
}
