import type { KeepableField, NewMemory } from '../modules/memory/memory-store.js';

/**
 * The attributes a keyed write replaces unless the caller left them to be kept (NewMemory.keep), with
 * their column and value; every driver's upsert walks this one list. Tags come as a list: the driver
 * encodes them (SQLite JSON text, PostgreSQL text[]); metadata as JSON text on both.
 */
export function replacedAttributes(
  m: NewMemory,
): { column: string; value: unknown; field: KeepableField | 'valid_from' | 'valid_to' }[] {
  const all: { column: string; value: unknown; field: KeepableField }[] = [
    { field: 'type', column: 'type', value: m.type },
    { field: 'tags', column: 'tags', value: m.tags },
    { field: 'metadata', column: 'metadata', value: JSON.stringify(m.metadata) },
    { field: 'importance', column: 'importance', value: m.importance },
    { field: 'session', column: 'session_id', value: m.session },
    { field: 'expires_at', column: 'expires_at', value: m.expires_at },
  ];
  const keep = new Set(m.keep);
  // A fact's validity belongs to that statement: a new statement under the key never inherits the old one's.
  return [
    ...all.filter((a) => !keep.has(a.field)),
    { field: 'valid_from', column: 'valid_from', value: m.valid_from },
    { field: 'valid_to', column: 'valid_to', value: m.valid_to },
  ];
}

/** How much a repeat without an importance of its own raises the importance of the memory it repeats. */
export const REINFORCE_STEP = 0.05;

/**
 * The importance a duplicate leaves on the memory it reinforces is min(1, max(old + step, floor)): a
 * repeat that gives an importance raises the memory to it (never lowers it), and one that gives none
 * (its importance is the default) adds {@link REINFORCE_STEP}. Both drivers bind these two values.
 */
export function reinforcement(m: NewMemory): { step: number; floor: number } {
  return m.keep.includes('importance')
    ? { step: REINFORCE_STEP, floor: 0 }
    : { step: 0, floor: m.importance };
}
