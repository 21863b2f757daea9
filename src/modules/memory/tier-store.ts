import type { RequestScope } from '../../core/scope.js';
import type { PlanChange, TierMove, TierRow } from './memory-tiers.js';
import type { StorageTier } from './memory-types.js';

/** One recorded tier change of a memory (`brain memory explain`). */
export interface RecordedMove {
  from: StorageTier;
  to: StorageTier;
  reason: string;
  score: number;
  at: string;
}

/** What applying a plan changed: moves that found the memory still in its `from` tier, and scores written. */
export interface AppliedPlan {
  /** The moves made: those still due (the memory still in its `from` tier; a demotion's not protected). */
  moved: TierMove[];
  /**
   * Moves skipped: the memory had changed tier (a concurrent rebalance) or was forgotten meanwhile, or a
   * demotion's memory was pinned or given a protected type meanwhile.
   */
  stale: number;
  rescored: number;
}

/**
 * The storage port of tiers and decay. A rebalance reads a tenant's live memories, plans in JS
 * (memory-tiers.ts) and applies the plan in one transaction: each move is conditional on the memory
 * still being in its `from` tier, and a demotion (from hot, or to cold) on its not being pinned or of a
 * PROTECTED_TYPES type as it stands then, so two rebalances at once never move a memory twice, a write
 * that lands meanwhile is neither lost nor moved, and a memory pinned meanwhile is not demoted.
 */
/** What the hot-tier utilisation gauges are made of (TierStore.tierCounts). */
export interface TierCounts {
  hot: number;
  warm: number;
  cold: number;
  /** Tenants holding a live memory. */
  tenants: number;
  /** The hot memories of the tenant holding the most (0: none). */
  fullest: number;
}

export interface TierStore {
  /** Tenants that hold live memories. */
  tenants(): Promise<string[]>;
  /** The live (not forgotten, not expired) memories of a tenant, for planning. */
  rows(tenantId: string, now: string): Promise<TierRow[]>;
  /** A plan's changes (each row's at most once, with its ref from rows), in one transaction. */
  apply(tenantId: string, changes: readonly PlanChange[], now: string): Promise<AppliedPlan>;
  /** The moves of one memory, oldest first. */
  moves(scope: RequestScope, id: string): Promise<RecordedMove[]>;
  /**
   * Live memories per tier across tenants, how many tenants hold any, and the most hot memories one
   * tenant holds (the utilisation gauges: BRAIN_HOT_MAX is per tenant).
   */
  tierCounts(now: string): Promise<TierCounts>;
}
