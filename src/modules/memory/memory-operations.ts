import type { StorageTier } from './memory-types.js';

/** What the memory service did, as `brain_memory_operations_total{operation}` names it. */
export type MemoryOperation = 'remember' | 'recall' | 'get' | 'history' | 'list' | 'update' | 'forget';

/**
 * The tier an operation is counted under:
 * - `hot`, `warm`, `cold`: the coldest tier among the live memories it touched (a recall's hits, a
 *   list's page, the memory got, updated, forgotten or whose history was read). A remember counts
 *   under `hot`, the tier every new memory enters, also when a keyed write or a duplicate lands on an
 *   existing memory (that memory's tier is not read back for a metric);
 * - `none`: it touched no live memory (a recall or list that found nothing, a forget that matched
 *   nothing, a hard forget of a memory forgotten before);
 * - `all`: a forget by filter or of everything, which removes across every tier without reading which.
 */
export type OperationTier = StorageTier | 'none' | 'all';

/** Told of every operation the memory service completed; failed calls are not told. */
export type MemoryOperationObserver = (operation: MemoryOperation, tier: OperationTier) => void;

const COLDNESS: Record<StorageTier, number> = { hot: 0, warm: 1, cold: 2 };

/** The coldest of these tiers (cold before warm before hot), or `none` when there is none. */
export function coldestTier(tiers: Iterable<StorageTier | undefined>): OperationTier {
  let coldest: StorageTier | null = null;
  for (const tier of tiers)
    if (tier !== undefined && (coldest === null || COLDNESS[tier] > COLDNESS[coldest])) coldest = tier;
  return coldest ?? 'none';
}

/** The operations one service reports, to every observer subscribed (the metrics of each HTTP server). */
export class MemoryOperationHub {
  readonly #observers: MemoryOperationObserver[] = [];

  subscribe(observer: MemoryOperationObserver): void {
    this.#observers.push(observer);
  }

  /** Whether anyone listens: what a tier costs to learn (a read) is paid only then. */
  get observed(): boolean {
    return this.#observers.length > 0;
  }

  report(operation: MemoryOperation, tier: OperationTier): void {
    for (const observer of this.#observers) observer(operation, tier);
  }
}
