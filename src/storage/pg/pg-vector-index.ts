import type pg from 'pg';
import type { Logger } from '../../core/logger.js';
import type { PgDatabase } from './pg-database.js';
import { vectorArrayBinary } from './pg-memory-rows.js';

/** One vector to store: the memory's row, its tenant, and the model that made it. */
export interface VectorRow {
  rid: string;
  tenantId: string;
  model: string;
  vector: Float32Array;
}

/**
 * Stores vectors as fresh rows (every write site goes through here). A fresh row is outside the HNSW
 * indexes (their predicate is `NOT fresh`), so a write costs a heap insert, not a graph insertion (about
 * a millisecond each on this machine); recall scans the fresh rows exactly beside the index, and the
 * indexer below moves them into the graph after the writes.
 */
export async function writeVectors(
  db: PgDatabase,
  client: pg.PoolClient,
  rows: readonly VectorRow[],
): Promise<void> {
  if (rows.length === 0) return;
  const oid = await db.vectorOid();
  await client.query(
    `INSERT INTO memory_embeddings (rid, tenant_id, model, dims, embedding, fresh)
     SELECT r, t, mo, d, v, true
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::vector[]) AS x(r, t, mo, d, v)
     ON CONFLICT (rid) DO UPDATE SET tenant_id = excluded.tenant_id, model = excluded.model,
       dims = excluded.dims, embedding = excluded.embedding, fresh = true`,
    [
      rows.map((r) => r.rid),
      rows.map((r) => r.tenantId),
      rows.map((r) => r.model),
      rows.map((r) => r.vector.length),
      vectorArrayBinary(
        oid,
        rows.map((r) => r.vector),
      ),
    ],
  );
}

/** Fresh rows moved into the graph per transaction: small enough that a writer never waits long on one. */
const BATCH = 200;
/** How long the writes must pause before indexing starts at full speed (foreground work first)... */
const QUIET_MS = 200;
/**
 * ...but it starts anyway once this process has left this many vectors fresh (an exact scan of them
 * costs recall a few milliseconds) or this long after the first of them, and then, while writes go on,
 * takes a fifth of the time: after each batch it rests four times as long as the batch took.
 */
const MAX_BACKLOG = 10_000;
const MAX_DELAY_MS = 10_000;
const BUSY_REST = 4;
/**
 * Moving a row leaves its fresh version dead. After a drain that moved this many, the indexer vacuums
 * the table itself (SKIP_LOCKED: one replica at a time), rather than leave it to autovacuum at a moment
 * of its choosing: vacuum scans the whole HNSW index, which slows recall while it runs.
 */
const VACUUM_AFTER = 10_000;
/** Rows another replica left fresh (it died, or wrote while no indexer ran) are picked up this often. */
const SWEEP_MS = 30_000;
/** After a failure: wait this long, doubling, up to a minute. */
const RETRY_MS = 1_000;

/**
 * Moves fresh vectors into the HNSW indexes in the background, off the write path: a batch at a time
 * (`FOR UPDATE SKIP LOCKED`, so replicas share the work without taking the same rows), once writes have
 * paused or the oldest fresh row has waited {@link MAX_DELAY_MS}, and on a sweep for rows any replica
 * left behind. Flipping `fresh` makes PostgreSQL insert the new row version into the graph.
 */
export class PgVectorIndexer {
  readonly #db: PgDatabase;
  readonly #logger: Logger;
  #quiet: NodeJS.Timeout | null = null;
  #deadline: NodeJS.Timeout | null = null;
  #sweep: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #failures = 0;
  #closed = false;
  /** Vectors this process wrote fresh since its last drain, and when it last wrote. */
  #backlog = 0;
  #lastWrite = 0;
  /** Rows moved into the graph since the last vacuum. */
  #moved = 0;

  constructor(db: PgDatabase, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
  }

  /** Starts the periodic sweep (and one right away for what an earlier process left fresh). */
  start(): void {
    if (this.#closed || this.#sweep) return;
    this.#sweep = setInterval(() => this.#kick(), SWEEP_MS);
    this.#sweep.unref();
    this.schedule();
  }

  /** `vectors` fresh vectors were committed: index them once writes pause (or the backlog or deadline comes). */
  schedule(vectors = 0): void {
    if (this.#closed) return;
    this.#lastWrite = performance.now();
    this.#backlog += vectors;
    if (this.#backlog >= MAX_BACKLOG) {
      this.#kick();
      return;
    }
    if (this.#quiet) clearTimeout(this.#quiet);
    this.#quiet = setTimeout(() => this.#kick(), QUIET_MS);
    this.#quiet.unref();
    if (!this.#deadline) {
      this.#deadline = setTimeout(() => this.#kick(), MAX_DELAY_MS);
      this.#deadline.unref();
    }
  }

  #kick(): void {
    if (this.#quiet) clearTimeout(this.#quiet);
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#quiet = null;
    this.#deadline = null;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain()
      .then(() => {
        this.#failures = 0;
      })
      .catch((error) => {
        if (this.#closed) return;
        this.#failures++;
        const wait = Math.min(60_000, RETRY_MS * 2 ** (this.#failures - 1));
        this.#logger.warn({ err: error, retryInMs: wait }, 'could not index fresh vectors; retrying');
        const retry = setTimeout(() => this.#kick(), wait);
        retry.unref();
      })
      .finally(() => {
        this.#running = null;
        if (this.#again && !this.#closed) {
          this.#again = false;
          this.#kick();
        }
      });
  }

  /** Indexes batches until none is left (that this replica can take), resting while writes go on. */
  async #drain(): Promise<void> {
    this.#backlog = 0;
    for (;;) {
      const start = performance.now();
      if (this.#closed) return;
      const n = await this.indexBatch();
      if (n < BATCH) {
        await this.#vacuumIfDue();
        return;
      }
      const took = performance.now() - start;
      const busy = performance.now() - this.#lastWrite < QUIET_MS;
      await new Promise((resolve) =>
        busy ? setTimeout(resolve, took * BUSY_REST).unref() : setImmediate(resolve),
      );
    }
  }

  /** Moves up to one batch of fresh rows into the graph; returns how many it moved. */
  async indexBatch(): Promise<number> {
    const result = await this.#db.query(
      `UPDATE memory_embeddings SET fresh = false WHERE rid IN (
         SELECT rid FROM memory_embeddings WHERE fresh ORDER BY rid LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)`,
      [],
      this.#db.primary,
    );
    const moved = result.rowCount ?? 0;
    this.#moved += moved;
    return moved;
  }

  /** Vacuums (and analyzes) the table once enough rows were moved since the last time. */
  async #vacuumIfDue(): Promise<void> {
    if (this.#moved < VACUUM_AFTER || this.#closed) return;
    this.#moved = 0;
    await this.#db.query('VACUUM (ANALYZE, SKIP_LOCKED) memory_embeddings', [], this.#db.primary);
  }

  /** Indexes every fresh row now, waiting for rows another replica holds (benchmarks, `warm`). */
  async flush(): Promise<void> {
    if (this.#running) await this.#running;
    for (;;) {
      let moved = await this.indexBatch();
      while (moved > 0) moved = await this.indexBatch();
      const { rows } = await this.#db.query<{ n: string }>(
        'SELECT count(*) AS n FROM memory_embeddings WHERE fresh',
        [],
        this.#db.primary,
      );
      if (Number(rows[0]?.n ?? 0) === 0) {
        await this.#vacuumIfDue();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** How many vectors of a tenant and model wait outside the index. */
  async pending(tenantId: string, model: string): Promise<number> {
    const { rows } = await this.#db.query<{ n: string }>(
      'SELECT count(*) AS n FROM memory_embeddings WHERE fresh AND tenant_id = $1 AND model = $2',
      [tenantId, model],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Stops scheduling and waits for the batch in flight (the rest stay fresh for the next process). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const t of [this.#quiet, this.#deadline, this.#sweep]) if (t) clearTimeout(t);
    await this.#running?.catch(() => undefined);
  }
}
