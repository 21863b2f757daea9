import type { StatementCache } from './statement-cache.js';

/** A count is trusted this long after it was taken, even if writes landed since. */
const COUNT_TTL_MS = 5000;

/**
 * The two reads of a tenant that decide what the vector index does next: how far its rows have changed
 * (a snapshot's tail is the gap to it) and how many live memories it holds (whether an index pays off).
 * Both run on searches and on every watch tick, so they stay cheap: max(change_seq) is one index seek,
 * and the count is taken again only after a write, and at most every COUNT_TTL_MS.
 */
export class VectorTenantStats {
  readonly #sql: StatementCache;
  readonly #now: () => number;
  readonly #counts = new Map<string, { seq: number; at: number; count: number }>();

  /** `now` is the clock the count's age is read on (ms since epoch). */
  constructor(sql: StatementCache, now: () => number) {
    this.#sql = sql;
    this.#now = now;
  }

  /** The highest change_seq of the tenant's rows (0: none). */
  maxSeq(tenantId: string): number {
    const row = this.#sql
      .get('SELECT max(change_seq) AS s FROM memories WHERE tenant_id = ?')
      .get(tenantId) as { s: number | null };
    return row.s ?? 0;
  }

  /** Live memories of a tenant, re-counted at most every few seconds and only after a write. */
  liveCount(tenantId: string): number {
    const seq = this.maxSeq(tenantId);
    const now = this.#now();
    const cached = this.#counts.get(tenantId);
    if (cached && (cached.seq === seq || now - cached.at < COUNT_TTL_MS)) return cached.count;
    const row = this.#sql
      .get('SELECT count(*) AS n FROM memories WHERE tenant_id = ? AND deleted_at IS NULL')
      .get(tenantId) as { n: number };
    this.#counts.set(tenantId, { seq, at: now, count: row.n });
    return row.n;
  }
}
