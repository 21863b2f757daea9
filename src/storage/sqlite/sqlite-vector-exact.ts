import type { MemoryFilter } from '../../modules/memory/memory-filter.js';
import { liveMemoryWhere } from './sqlite-memory-rows.js';
import type { StatementCache } from './statement-cache.js';

export interface VectorHit {
  rid: number;
  similarity: number;
}

type DistanceRow = { rid: number; distance: number };

function hits(rows: DistanceRow[]): VectorHit[] {
  return rows.map((r) => ({ rid: r.rid, similarity: 1 - r.distance }));
}

/**
 * Exact vector search in SQL with sqlite-vec: the reference every in-memory snapshot is measured against,
 * the search of the rows a snapshot does not hold yet (its tail), and the exact re-scoring of a snapshot's
 * candidates. Each query compares only vectors of the given model.
 */
export class SqliteVectorExact {
  readonly #sql: StatementCache;

  constructor(sql: StatementCache) {
    this.#sql = sql;
  }

  /** The nearest live memories matching the filter among all the tenant's vectors of `model`. */
  search(
    tenantId: string,
    query: Buffer,
    model: string,
    filter: MemoryFilter,
    limit: number,
    now: string,
  ): VectorHit[] {
    return this.#nearest('memory_embeddings e JOIN memories m ON m.rid = e.rid', 'e.model = ?', [model], {
      tenantId,
      query,
      filter,
      limit,
      now,
    });
  }

  /** The same, over only the rows changed after `afterSeq` (what a snapshot at that seq lacks). */
  searchTail(
    tenantId: string,
    query: Buffer,
    model: string,
    filter: MemoryFilter,
    limit: number,
    now: string,
    afterSeq: number,
  ): VectorHit[] {
    return this.#nearest(
      // The change index pins the plan to the tail's range: a project index would scan the whole tenant.
      'memories m INDEXED BY memories_change CROSS JOIN memory_embeddings e ON e.rid = m.rid',
      'm.tenant_id = ? AND m.change_seq > ? AND e.model = ?',
      [tenantId, afterSeq, model],
      { tenantId, query, filter, limit, now },
    );
  }

  #nearest(
    from: string,
    condition: string,
    params: unknown[],
    q: { tenantId: string; query: Buffer; filter: MemoryFilter; limit: number; now: string },
  ): VectorHit[] {
    const where = liveMemoryWhere(q.tenantId, q.now, q.filter);
    const rows = this.#sql
      .get(
        `SELECT e.rid AS rid, vec_distance_cosine(vec_int8(e.embedding), vec_int8(?)) AS distance
         FROM ${from} WHERE ${condition} AND ${where.sql} ORDER BY distance LIMIT ?`,
      )
      .all(q.query, ...params, ...where.params, q.limit) as DistanceRow[];
    return hits(rows);
  }

  /** Re-checks liveness, filter and model of candidate rids and scores them exactly, best first. */
  rescore(
    tenantId: string,
    rids: number[],
    query: Buffer,
    model: string,
    filter: MemoryFilter,
    limit: number,
    now: string,
  ): VectorHit[] {
    if (rids.length === 0) return [];
    const where = liveMemoryWhere(tenantId, now, filter);
    const rows = this.#sql
      .get(
        // CROSS JOIN pins the join order: walk the short list, never scan the tenant's rows.
        `SELECT e.rid AS rid, vec_distance_cosine(vec_int8(e.embedding), vec_int8(?)) AS distance
         FROM json_each(?) j CROSS JOIN memory_embeddings e ON e.rid = j.value CROSS JOIN memories m ON m.rid = e.rid
         WHERE e.model = ? AND ${where.sql}
         ORDER BY distance LIMIT ?`,
      )
      .all(query, JSON.stringify(rids), model, ...where.params, limit) as DistanceRow[];
    return hits(rows);
  }
}
