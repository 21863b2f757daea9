import type { MemoryFilter } from '../../modules/memory/memory-filter.js';
import { blobToInt8, liveMemoryWhere } from './sqlite-memory-rows.js';
import type { StatementCache } from './statement-cache.js';
import { int8Similarity, queryNorm, type VectorRowCache, type VectorRowCaches } from './vector-row-cache.js';

export interface VectorHit {
  rid: number;
  similarity: number;
}

type DistanceRow = { rid: number; distance: number | null };

/** A row to score, with the change_seq it was read at (the version of its vector the caller saw). */
export interface RowVersion {
  rid: number;
  seq: number;
}

/** A zero vector has no direction (sqlite-vec's distance is NaN, read as NULL): it is no hit. */
function hits(rows: DistanceRow[]): VectorHit[] {
  return rows.flatMap((r) => (r.distance === null ? [] : [{ rid: r.rid, similarity: 1 - r.distance }]));
}

/**
 * Exact vector search in SQL with sqlite-vec: the reference every in-memory snapshot is measured against,
 * the search of the rows a snapshot does not hold yet (its tail), and the exact re-scoring of given rows
 * (a snapshot's candidates, the text stage's hits). Each query compares only vectors of the given model.
 * Re-scoring reads each row's vector from the in-memory cache when it holds the row at the change_seq
 * read with it, else from SQL (and keeps it), and scores it as sqlite-vec would, to the bit.
 */
export class SqliteVectorExact {
  readonly #sql: StatementCache;
  readonly #caches: VectorRowCaches;

  constructor(sql: StatementCache, caches: VectorRowCaches) {
    this.#sql = sql;
    this.#caches = caches;
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
         FROM ${from} WHERE ${condition} AND ${where.sql} ORDER BY distance NULLS LAST, e.rid LIMIT ?`,
      )
      .all(q.query, ...params, ...where.params, q.limit) as DistanceRow[];
    return hits(rows);
  }

  /**
   * Re-checks liveness and filter of candidate rids and scores those with a vector of `model` exactly,
   * best first (ties keep the candidates' order). One statement reads the rows' change_seq with the
   * check; only rows the cache lacks at that seq are read again, with their vectors.
   */
  rescore(
    tenantId: string,
    rids: number[],
    query: Int8Array,
    model: string,
    filter: MemoryFilter,
    limit: number,
    now: string,
  ): VectorHit[] {
    if (rids.length === 0) return [];
    const where = liveMemoryWhere(tenantId, now, filter);
    const live = this.#sql
      .get(
        `SELECT m.rid, m.change_seq FROM json_each(?) j CROSS JOIN memories m ON m.rid = j.value
         WHERE ${where.sql}`,
      )
      .raw(true)
      .all(JSON.stringify(rids), ...where.params) as [rid: number, seq: number][];
    const rows = live.map(([rid, seq]) => ({ rid, seq }));
    const hits = this.#score(tenantId, rows, query, model, filter, now);
    return hits.sort((a, b) => b.similarity - a.similarity).slice(0, limit);
  }

  /**
   * The similarity of each given row, read live at `seq` by the caller (the text stage), that has a
   * vector of `model`, in the rows' order. A row whose seq moved since is read again.
   */
  similarities(
    tenantId: string,
    rows: RowVersion[],
    query: Int8Array,
    model: string,
    now: string,
  ): VectorHit[] {
    return this.#score(tenantId, rows, query, model, { include_cold: true }, now);
  }

  /**
   * Scores from the cache, the misses from one SQL read (live under `filter`, kept for next time); in
   * the rows' order.
   */
  #score(
    tenantId: string,
    rows: RowVersion[],
    query: Int8Array,
    model: string,
    filter: MemoryFilter,
    now: string,
  ): VectorHit[] {
    const cache = this.#caches.get(tenantId, model, query.length);
    const norm = queryNorm(query);
    const scores = rows.map(({ rid, seq }) => cache.similarity(rid, seq, query, norm));
    const misses = rows.filter((_, i) => scores[i] === undefined).map((r) => r.rid);
    const read = misses.length > 0 ? this.#read(cache, tenantId, misses, query, model, filter, now) : null;
    const hits: VectorHit[] = [];
    rows.forEach(({ rid }, i) => {
      const similarity = scores[i] === undefined ? read?.get(rid) : scores[i];
      if (similarity !== undefined && similarity !== null) hits.push({ rid, similarity });
    });
    return hits;
  }

  /**
   * The similarity of each row that is still live with a vector of `model`, from SQL (a row may have
   * changed since the caller read it); each row is kept in the cache at the seq read with it, one
   * without a vector of `model` as none, so that it is not read again until it changes.
   */
  #read(
    cache: VectorRowCache,
    tenantId: string,
    rids: number[],
    query: Int8Array,
    model: string,
    filter: MemoryFilter,
    now: string,
  ): Map<number, number> {
    const where = liveMemoryWhere(tenantId, now, filter);
    const rows = this.#sql
      .get(
        // CROSS JOIN pins the join order: walk the short list, never scan the tenant's rows.
        `SELECT m.rid, m.change_seq, e.embedding FROM json_each(?) j CROSS JOIN memories m ON m.rid = j.value
         LEFT JOIN memory_embeddings e ON e.rid = m.rid AND e.model = ?
         WHERE ${where.sql}`,
      )
      .raw(true)
      .all(JSON.stringify(rids), model, ...where.params) as [number, number, Buffer | null][];
    const similarities = new Map<number, number>();
    for (const [rid, seq, blob] of rows) {
      const vector = blob ? blobToInt8(blob) : null;
      cache.put(rid, seq, vector);
      const similarity = vector && vector.length === query.length ? int8Similarity(vector, query) : null;
      if (similarity !== null) similarities.set(rid, similarity);
    }
    return similarities;
  }
}
