import type { TierRow } from '../modules/memory/memory-tiers.js';
import type { StorageTier } from '../modules/memory/memory-types.js';

/**
 * A rebalance's row as both drivers select it, column by column (read as an array: building an object
 * per row column by column was ~40% of reading 100,000 on PostgreSQL): ref (the rowid or rid), id,
 * type, pinned (SQLite's 0 or 1, PostgreSQL's boolean), importance, access_count, created_at,
 * accessed_at, storage_tier, memory_score, tier_access_count.
 */
export type TierColumns = [
  number,
  string,
  string,
  number | boolean,
  number,
  number,
  string,
  string | null,
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
    created_at: r[6],
    accessed_at: r[7],
    storage_tier: r[8],
    memory_score: r[9],
    tier_access_count: r[10],
  };
}
