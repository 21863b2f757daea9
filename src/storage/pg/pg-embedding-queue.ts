import { randomUUID } from 'node:crypto';
import type { EmbeddingQueueStore, QueuedText } from '../../modules/embeddings/embedding-queue.js';
import type { PgDatabase } from './pg-database.js';
import { writeVectors } from './pg-vector-index.js';

/** How long a claimed row is another replica's before anyone may claim it again (its owner died). */
const LEASE_SECONDS = 60;
const ACTIVE_MODEL_KEY = 'embedding_model';
/** Serialises model switches across replicas. */
const SWITCH_LOCK = 0x656d6264; // 'embd'

/**
 * The embedding queue on PostgreSQL, shared by every replica: a replica claims the oldest rows with a
 * lease (`FOR UPDATE SKIP LOCKED`, so two never claim the same row), and may claim its own leased rows
 * again at once (a retry after a failed batch); another's only after the lease ran out.
 */
export class PgEmbeddingQueue implements EmbeddingQueueStore {
  readonly #db: PgDatabase;
  readonly #me = randomUUID();
  readonly #onStored: (tenantIds: string[], vectors: number) => Promise<void>;

  constructor(db: PgDatabase, onStored: (tenantIds: string[], vectors: number) => Promise<void>) {
    this.#db = db;
    this.#onStored = onStored;
  }

  /**
   * Gives this replica's leases back (at shutdown): rows it claimed but did not embed (a failed batch)
   * are at once another replica's, or the next start's, instead of after the lease runs out.
   */
  async releaseLeases(): Promise<void> {
    await this.#db.query(
      'UPDATE embedding_queue SET leased_by = NULL, leased_until = NULL WHERE leased_by = $1',
      [this.#me],
      this.#db.primary,
    );
  }

  async switchModel(model: string): Promise<number> {
    return this.#db.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [SWITCH_LOCK]);
      const { rows } = await client.query<{ value: string }>('SELECT value FROM brain_meta WHERE key = $1', [
        ACTIVE_MODEL_KEY,
      ]);
      if (rows[0]?.value === model) return 0;
      const queued = await client.query(
        `INSERT INTO embedding_queue (rid)
         SELECT m.rid FROM memories m WHERE m.deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM memory_embeddings e WHERE e.rid = m.rid AND e.model = $1)
         ON CONFLICT DO NOTHING`,
        [model],
      );
      await client.query(
        'INSERT INTO brain_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [ACTIVE_MODEL_KEY, model],
      );
      return queued.rowCount ?? 0;
    });
  }

  async nextQueued(limit: number): Promise<QueuedText[]> {
    const { rows } = await this.#db.query<QueuedText>(
      `WITH claimed AS (
         UPDATE embedding_queue q SET leased_by = $2, leased_until = now() + make_interval(secs => ${LEASE_SECONDS})
         WHERE q.rid IN (
           SELECT q2.rid FROM embedding_queue q2 JOIN memories m ON m.rid = q2.rid
           WHERE m.deleted_at IS NULL AND (q2.leased_until IS NULL OR q2.leased_until < now() OR q2.leased_by = $2)
           ORDER BY q2.rid LIMIT $1 FOR UPDATE OF q2 SKIP LOCKED)
         RETURNING q.rid)
       SELECT m.id, m.content, m.content_hash FROM claimed c JOIN memories m ON m.rid = c.rid ORDER BY c.rid`,
      [limit, this.#me],
      this.#db.primary,
    );
    return rows;
  }

  async storeVectors(
    model: string,
    items: { id: string; content_hash: string; vector: Float32Array | null }[],
  ): Promise<void> {
    if (items.length === 0) return;
    const tenants = await this.#db.transaction(async (client) => {
      // Only rows still live with the hash that was embedded; the rest stay queued or are gone.
      const { rows } = await client.query<{ rid: string; tenant_id: string; id: string }>(
        `SELECT m.rid, m.tenant_id, m.id FROM memories m JOIN unnest($1::text[], $2::text[]) AS x(id, h)
           ON m.id = x.id AND m.content_hash = x.h WHERE m.deleted_at IS NULL FOR UPDATE OF m`,
        [items.map((i) => i.id), items.map((i) => i.content_hash)],
      );
      const byId = new Map(items.map((i) => [i.id, i]));
      const withVector = rows.filter((r) => byId.get(r.id)?.vector);
      if (withVector.length > 0)
        await writeVectors(
          this.#db,
          client,
          withVector.map((r) => ({
            rid: r.rid,
            tenantId: r.tenant_id,
            model,
            vector: byId.get(r.id)?.vector as Float32Array,
          })),
        );
      // A null vector (nothing to embed) also leaves the queue.
      await client.query('DELETE FROM embedding_queue WHERE rid = ANY($1::bigint[])', [
        rows.map((r) => r.rid),
      ]);
      return [...new Set(rows.map((r) => r.tenant_id))];
    });
    await this.#onStored(tenants, items.length);
  }

  async backlog(): Promise<number> {
    const { rows } = await this.#db.query<{ n: string }>(
      'SELECT count(*) AS n FROM embedding_queue q JOIN memories m ON m.rid = q.rid WHERE m.deleted_at IS NULL',
      [],
      this.#db.primary,
    );
    return Number(rows[0]?.n ?? 0);
  }
}
