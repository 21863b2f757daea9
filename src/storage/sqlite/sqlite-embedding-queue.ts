import type Database from 'better-sqlite3';
import type { Logger } from '../../core/logger.js';
import type { EmbeddingQueueStore, QueuedText } from '../../modules/embeddings/embedding-queue.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { vectorToBlob } from './sqlite-memory-rows.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { prepareStatement } from './statement-cache.js';

const ACTIVE_MODEL_KEY = 'embedding_model';

/**
 * The embedding queue on SQLite (migration 5): the rids of memories waiting for a vector. The memory
 * store adds to it when it writes a memory without a vector and removes forgotten memories from it.
 * Storing a vector bumps the memory's change_seq, so the vector index catches up on it.
 */
export class SqliteEmbeddingQueue implements EmbeddingQueueStore {
  readonly #db: SqliteDatabase;
  readonly #next: Database.Statement;
  readonly #find: Database.Statement;
  readonly #upsert: Database.Statement;
  readonly #deleteVector: Database.Statement;
  readonly #dequeue: Database.Statement;
  readonly #bump: Database.Statement;
  readonly #maxSeq: Database.Statement;
  readonly #count: Database.Statement;

  constructor(db: SqliteDatabase, logger: Logger, file?: SqliteFileGuard) {
    this.#db = db;
    this.#next = prepareStatement(
      db,
      `SELECT m.id, m.content, m.content_hash FROM embedding_queue q JOIN memories m ON m.rid = q.rid
       WHERE m.deleted_at IS NULL ORDER BY q.rid LIMIT ?`,
    );
    this.#find = prepareStatement(
      db,
      'SELECT rid, tenant_id, content_hash, deleted_at FROM memories WHERE id = ?',
    );
    this.#upsert = prepareStatement(
      db,
      `INSERT INTO memory_embeddings (rid, model, embedding) VALUES (?, ?, ?)
       ON CONFLICT (rid) DO UPDATE SET model = excluded.model, embedding = excluded.embedding`,
    );
    this.#deleteVector = prepareStatement(db, 'DELETE FROM memory_embeddings WHERE rid = ?');
    this.#dequeue = prepareStatement(db, 'DELETE FROM embedding_queue WHERE rid = ?');
    this.#bump = prepareStatement(db, 'UPDATE memories SET change_seq = ? WHERE rid = ?');
    this.#maxSeq = prepareStatement(
      db,
      'SELECT coalesce(max(change_seq), 0) FROM memories WHERE tenant_id = ?',
    ).pluck();
    this.#count = prepareStatement(
      db,
      'SELECT count(*) FROM embedding_queue q JOIN memories m ON m.rid = q.rid WHERE m.deleted_at IS NULL',
    ).pluck();
    guardStoreMethods<SqliteEmbeddingQueue>(
      this,
      { reads: ['nextQueued', 'backlog'], writes: ['switchModel', 'storeVectors'] },
      { dbPath: db.name, logger, file },
    );
  }

  async switchModel(model: string): Promise<number> {
    const run = this.#db.transaction((): number => {
      const current = this.#db
        .prepare('SELECT value FROM brain_meta WHERE key = ?')
        .pluck()
        .get(ACTIVE_MODEL_KEY) as string | undefined;
      if (current === model) return 0;
      const queued = this.#db
        .prepare(
          `INSERT OR IGNORE INTO embedding_queue (rid)
           SELECT m.rid FROM memories m LEFT JOIN memory_embeddings e ON e.rid = m.rid
           WHERE m.deleted_at IS NULL AND m.content_hash <> '' AND (e.rid IS NULL OR e.model <> ?)`,
        )
        .run(model).changes;
      this.#db
        .prepare(
          'INSERT INTO brain_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        )
        .run(ACTIVE_MODEL_KEY, model);
      return queued;
    });
    return run.immediate();
  }

  async nextQueued(limit: number): Promise<QueuedText[]> {
    return this.#next.all(limit) as QueuedText[];
  }

  async storeVectors(
    model: string,
    items: { id: string; content_hash: string; vector: Float32Array | null }[],
  ): Promise<void> {
    const run = this.#db.transaction(() => {
      const seqs = new Map<string, number>();
      for (const item of items) {
        const row = this.#find.get(item.id) as
          | { rid: number; tenant_id: string; content_hash: string; deleted_at: string | null }
          | undefined;
        if (!row) continue;
        // Changed since it was read: the write that changed it queued it again for its new text.
        if (row.content_hash !== item.content_hash && row.deleted_at === null) continue;
        this.#dequeue.run(row.rid);
        if (row.deleted_at !== null) continue;
        if (item.vector) this.#upsert.run(row.rid, model, vectorToBlob(item.vector));
        else this.#deleteVector.run(row.rid);
        const seq = (seqs.get(row.tenant_id) ?? (this.#maxSeq.get(row.tenant_id) as number)) + 1;
        seqs.set(row.tenant_id, seq);
        this.#bump.run(seq, row.rid);
      }
    });
    run.immediate();
  }

  async backlog(): Promise<number> {
    return this.#count.get() as number;
  }
}
