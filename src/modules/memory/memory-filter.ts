/** Filters shared by list, recall and forget. All given fields must match. */
export interface MemoryFilter {
  project?: string;
  session?: string;
  types?: string[];
  tags?: string[];
  /** created_at >= since */
  since?: string;
  /** created_at < until */
  until?: string;
  include_cold?: boolean;
  /**
   * Recall's `as_of`: the store as it stood then. Memories created after it are left out, and facts
   * are judged valid at it instead of now (see `valid_at`).
   */
  as_of?: string;
  /**
   * Set by the drivers' candidates(), never by list or forget: only facts valid at this instant (valid_from
   * at or before it, valid_to after it) and, unless `as_of`, no fact a newer one superseded.
   */
  valid_at?: string;
}

/** The filter fields that can narrow a selection, in the order messages name them. */
export const FILTER_FIELDS = ['project', 'session', 'types', 'tags', 'since', 'until'] as const;

/**
 * The fields of a filter that add a condition. A field that is absent, or an empty list (`tags: []`
 * matches every memory), adds none: a filter with no condition selects everything, which forget must
 * never take for a request to forget some memories. `include_cold` widens, never narrows.
 */
export function filterConditions(filter: MemoryFilter): (typeof FILTER_FIELDS)[number][] {
  return FILTER_FIELDS.filter((field) => {
    const value = filter[field];
    if (value === undefined) return false;
    return Array.isArray(value) ? value.length > 0 : true;
  });
}

/** True when the filter narrows beyond tenant and liveness. */
export function hasFilterCondition(filter: MemoryFilter): boolean {
  return filterConditions(filter).length > 0;
}
