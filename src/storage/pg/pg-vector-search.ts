import { createHash } from 'node:crypto';
import type { Logger } from '../../core/logger.js';
import type { PgDatabase } from './pg-database.js';
import { PG_MEMORY_COLUMNS, type PgMemoryRow, type PgWhere, vectorBinary } from './pg-memory-rows.js';
import { PgVectorIndexer } from './pg-vector-index.js';

/** The advisory lock under which one replica at a time builds HNSW indexes. */
const INDEX_BUILD_LOCK = 0x686e7377; // 'hnsw'
/** How long after a failed or deferred build the next attempt waits. */
const INDEX_RETRY_MS = 10_000;
/** Below this many vectors of a tenant and model an exact scan is as fast as the index. */
const EXACT_BELOW = 2000;

/**
 * The HNSW index name of a model and dimension (a hash: model names are free text). `v2`: the indexes
 * that leave fresh rows out (schema version 2); version 1's are dropped by its migration.
 */
function indexName(model: string, dims: number): string {
  return `memory_embeddings_hnsw_${createHash('sha256').update(`v2\u0000${model}\u0000${dims}`).digest('hex').slice(0, 16)}`;
}

/** The query's vector and its model, when recall has one. */
export interface QueryVector {
  vector: Float32Array;
  model: string;
}

/**
 * A scalar subquery: the similarity to the query vector (parameter `query`) of the row `rid`'s vector
 * of the model (parameter `model`), or NULL when it has none. Selected beside a row's columns, so text
 * hits come with their similarity and recall needs no further round trip.
 */
export function similaritySql(rid: string, query: string, dims: number, model: string): string {
  return `(SELECT 1 - (e.embedding::vector(${dims}) <=> ${query}::vector(${dims})) FROM memory_embeddings e
    WHERE e.rid = ${rid} AND e.model = ${model} AND e.dims = ${dims})`;
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * Vector search on pgvector: cosine distance on `embedding::vector(dims)`, the expression of the HNSW
 * index built per model and dimension (partial on the model and on rows no longer fresh), so a query of
 * that model uses it; the fresh rows, not yet in the graph, are scanned exactly in the same statement.
 * Tenant and filter predicates apply inside the same query; pgvector's iterative scan (set per
 * connection) keeps walking the graph until enough rows pass them.
 */
export class PgVectorSearch {
  readonly #db: PgDatabase;
  readonly #logger: Logger;
  readonly #indexes = new Map<string, Promise<void>>();
  readonly #ready = new Set<string>();
  readonly #sizes = new Map<string, { n: number; at: number }>();
  /** Moves fresh vectors into the graph in the background. */
  readonly indexer: PgVectorIndexer;

  constructor(db: PgDatabase, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
    this.indexer = new PgVectorIndexer(db, logger);
  }

  /** Creates the model's HNSW index if missing (CONCURRENTLY: writes go on meanwhile); once per process. */
  ensureIndex(model: string, dims: number): Promise<void> {
    const key = `${model}\u0000${dims}`;
    let pending = this.#indexes.get(key);
    if (!pending) {
      pending = this.#build(indexName(model, dims), model, dims)
        .then(() => {
          this.#ready.add(key);
        })
        .catch((error) => {
          // Tried again after a pause (by the next search or warm), not on every search meanwhile.
          setTimeout(() => this.#indexes.delete(key), INDEX_RETRY_MS).unref();
          this.#logger.warn({ err: error, model }, 'could not build the HNSW index; searching exactly');
        });
      this.#indexes.set(key, pending);
    }
    return pending;
  }

  /**
   * CREATE INDEX CONCURRENTLY that fails (a deadlock, a cancelled statement, a replica killed mid-build)
   * leaves an invalid index behind, which the planner never uses and `IF NOT EXISTS` would keep: recall
   * would scan every vector. Such a leftover is dropped and built again, and the result is checked.
   */
  async #build(name: string, model: string, dims: number): Promise<void> {
    const client = await this.#db.primary.connect();
    const valid = async () => {
      const { rows } = await client.query<{ valid: boolean }>(
        'SELECT i.indisvalid AS valid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = $1',
        [name],
      );
      return rows[0]?.valid ?? null;
    };
    let locked = false;
    try {
      if ((await valid()) === true) return;
      // One replica builds (an index being built also looks invalid); the others search exactly and
      // look again on their next search. A try-lock: waiting would deadlock with the build's own waits.
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [
        INDEX_BUILD_LOCK,
      ]);
      locked = rows[0]?.ok === true;
      if (!locked) throw new Error(`another replica is building the HNSW index ${name}`);
      if ((await valid()) === false) {
        this.#logger.warn({ index: name }, 'dropping an invalid HNSW index left by a failed build');
        await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
      }
      await client.query(
        `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${name} ON memory_embeddings
         USING hnsw ((embedding::vector(${dims})) vector_cosine_ops) WITH (m = 16, ef_construction = 40)
         WHERE model = ${quoteLiteral(model)} AND dims = ${dims} AND NOT fresh`,
      );
      if ((await valid()) !== true) throw new Error(`the HNSW index ${name} is not valid after its build`);
    } finally {
      if (locked)
        await client.query('SELECT pg_advisory_unlock($1)', [INDEX_BUILD_LOCK]).catch(() => undefined);
      client.release();
    }
  }

  /** The dimension of the model's index this process made sure of, or null. */
  dimensionsOf(model: string): number | null {
    for (const key of this.#ready) {
      const [m, d] = key.split('\u0000');
      if (m === model) return Number(d);
    }
    return null;
  }

  hasIndex(model: string, dims: number): boolean {
    return this.#ready.has(`${model}\u0000${dims}`);
  }

  async #size(tenantId: string, model: string): Promise<number> {
    const key = `${tenantId}\u0000${model}`;
    const cached = this.#sizes.get(key);
    if (cached && Date.now() - cached.at < 60_000) return cached.n;
    const { rows } = await this.#db.query<{ n: string }>(
      'SELECT count(*) AS n FROM memory_embeddings WHERE tenant_id = $1 AND model = $2',
      [tenantId, model],
    );
    const n = Number(rows[0]?.n ?? 0);
    this.#sizes.set(key, { n, at: Date.now() });
    return n;
  }

  invalidate(tenantId: string): void {
    if (tenantId === '*') {
      this.#sizes.clear();
      return;
    }
    const prefix = `${tenantId}\u0000`;
    for (const key of this.#sizes.keys()) if (key.startsWith(prefix)) this.#sizes.delete(key);
  }

  async search(
    tenantId: string,
    query: Float32Array,
    model: string,
    where: PgWhere,
    limit: number,
  ): Promise<{ hits: (PgMemoryRow & { similarity: number })[]; mode: 'exact' | 'approximate' }> {
    const dims = query.length;
    // An index this process has not made sure of (another replica was building it, or its build
    // failed) is looked at again in the background; the query below uses it once it is valid anyway.
    if (!this.hasIndex(model, dims)) void this.ensureIndex(model, dims);
    const approximate = this.hasIndex(model, dims) && (await this.#size(tenantId, model)) >= EXACT_BELOW;
    const n = where.params.length;
    const distance = `(e.embedding::vector(${dims}) <=> $${n + 1}::vector(${dims}))`;
    // A tenant below EXACT_BELOW is scanned exactly, never through the graph (`+ 0` is no expression
    // the index orders by): the graph holds every tenant's vectors, so its approximate answer for one
    // tenant would depend on what the others store. Equal distances go oldest first, as on SQLite, so
    // that ties do not come in whatever order a scan or sort found them.
    const order = approximate ? distance : `${distance} + 0, m.rid`;
    // The graph's nearest and the fresh rows' nearest, merged: one statement, one snapshot.
    // The rows' columns come along: recall needs no other query for the vector hits.
    const part = (fresh: string) => `(SELECT ${PG_MEMORY_COLUMNS}, ${distance} AS d
      FROM memory_embeddings e JOIN memories m ON m.rid = e.rid LEFT JOIN memory_tiers mt ON mt.rid = m.rid
      WHERE e.model = $${n + 2} AND e.dims = ${dims} AND ${fresh} AND e.tenant_id = $${n + 3} AND ${where.sql}
      ORDER BY ${order} LIMIT $${n + 4})`;
    const sql = `SELECT x.*, 1 - d AS similarity FROM (${part('NOT e.fresh')} UNION ALL ${part('e.fresh')}) x
      ORDER BY d, rid LIMIT $${n + 4}`;
    const values = [...where.params, vectorBinary(query), model, tenantId, limit];
    // ef_search (100) and the iterative scan are set per connection (pg-database.ts).
    const { rows } = await this.#db.query<PgMemoryRow & { similarity: number }>(sql, values);
    return { hits: rows, mode: approximate ? 'approximate' : 'exact' };
  }
}
