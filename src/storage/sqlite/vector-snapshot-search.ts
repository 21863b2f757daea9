import { hasFilterCondition, type MemoryFilter } from '../../modules/memory/memory-filter.js';
import type { VectorSnapshot } from './ann-index.js';
import { quantizeInt8 } from './sqlite-memory-rows.js';
import type { SqliteVectorExact, VectorHit } from './sqlite-vector-exact.js';

/** Share of a tenant a project must hold for a project-filtered search to use the tenant's snapshot. */
const ANN_MIN_SHARE = 0.3;

/** One search as the snapshot path sees it. */
export interface SnapshotQuery {
  tenantId: string;
  embedding: Float32Array;
  model: string;
  filter: MemoryFilter;
  limit: number;
  now: string;
}

/**
 * null when the snapshot cannot serve this filter well (any condition but a project, or a project too
 * small a share, whose hits the walk would mostly skip); else the share of the snapshot it covers.
 */
export function snapshotShare(snapshot: VectorSnapshot, filter: MemoryFilter): number | null {
  const { project, ...rest } = filter;
  if (hasFilterCondition(rest)) return null;
  if (project === undefined) return 1;
  const total = snapshot.size;
  const share = total > 0 ? (snapshot.projectCounts.get(project) ?? 0) / total : 0;
  return share >= ANN_MIN_SHARE ? share : null;
}

/** The better of two hit lists, one entry per rid (the tail's, scored on the current row, wins), best first. */
function mergeHits(a: VectorHit[], tail: VectorHit[], limit: number): VectorHit[] {
  if (tail.length === 0) return a;
  const byRid = new Map<number, VectorHit>();
  for (const hit of a) byRid.set(hit.rid, hit);
  for (const hit of tail) byRid.set(hit.rid, hit);
  return [...byRid.values()].sort((x, y) => y.similarity - x.similarity).slice(0, limit);
}

/**
 * The snapshot's nearest candidates re-checked in SQL and re-scored exactly, merged with the `pending` rows changed after it
 * searched exactly; null when too few candidates survived (a filter, or many stale entries), and the
 * caller then runs exact. SQLite stays the truth: a stale entry costs a slot, never a wrong hit.
 */
export function searchSnapshot(
  exact: SqliteVectorExact,
  snapshot: VectorSnapshot,
  q: SnapshotQuery,
  at: { share: number; pending: number; oversample: number },
): { hits: VectorHit[]; mode: 'exact' | 'approximate' } | null {
  const query = quantizeInt8(q.embedding);
  const blob = Buffer.from(query.buffer, query.byteOffset, query.byteLength);
  // A few times more than asked recovers most of what the int8 graph walk ranks slightly wrong.
  const want = Math.ceil((q.limit * at.oversample) / at.share) + 8;
  const rids = snapshot.candidates(query, want);
  let hits = exact.rescore(q.tenantId, rids, query, q.model, q.filter, q.limit, q.now);
  if (at.pending > 0) {
    const tail = exact.searchTail(q.tenantId, blob, q.model, q.filter, q.limit, q.now, snapshot.seq);
    hits = mergeHits(hits, tail, q.limit);
  }
  const expected = Math.min(q.limit, Math.floor(at.share * snapshot.size));
  if (hits.length < expected) return null;
  // The first build's matrix is searched by brute force, so its answers are exact too.
  return { hits, mode: snapshot.kind === 'hnsw' ? 'approximate' : 'exact' };
}
