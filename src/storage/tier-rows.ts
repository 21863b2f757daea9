import type { TierRow } from '../modules/memory/memory-tiers.js';
import type { StorageTier } from '../modules/memory/memory-types.js';

/**
 * A rebalance's row as both drivers select it, column by column (read as an array: building an object
 * per row column by column was ~40% of reading 100,000 on PostgreSQL): ref (the rowid or rid), id,
 * type, pinned (SQLite's 0 or 1, PostgreSQL's boolean), importance, access_count, last used (accessed_at,
 * else created_at: one column rather than both), storage_tier, memory_score, tier_access_count.
 */
export type TierColumns = [
  number,
  string,
  string,
  number | boolean,
  number,
  number,
  string,
  StorageTier,
  number,
  number,
];

export function tierRowFrom(r: TierColumns): TierRow {
  return {
    ref: r[0],
    id: r[1],
    type: r[2],
    pinned: r[3] === true || r[3] === 1,
    importance: r[4],
    access_count: r[5],
    last_used_at: r[6],
    storage_tier: r[7],
    memory_score: r[8],
    tier_access_count: r[9],
  };
}

/**
 * The tenants that hold a memory not forgotten, in order, for both engines: each found by one index
 * probe after the one before (a loose index scan), instead of reading every memory (DISTINCT read all
 * 100,000 of a tenant's rows: ~75 ms on PostgreSQL, ~15 ms on SQLite, against well under 1 ms).
 */
export const LIVE_TENANTS = `WITH RECURSIVE t(id) AS (
  SELECT (SELECT tenant_id FROM memories WHERE deleted_at IS NULL ORDER BY tenant_id LIMIT 1)
  UNION ALL
  SELECT (SELECT tenant_id FROM memories WHERE tenant_id > t.id AND deleted_at IS NULL ORDER BY tenant_id LIMIT 1)
  FROM t WHERE t.id IS NOT NULL
) SELECT id AS tenant_id FROM t WHERE id IS NOT NULL`;
