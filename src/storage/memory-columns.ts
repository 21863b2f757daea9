import type { KeepableField, NewMemory } from '../modules/memory/memory-store.js';

/**
 * The attributes a keyed write replaces unless the caller left them to be kept (NewMemory.keep), with
 * their column and value; every driver's upsert walks this one list. Tags come as a list: the driver
 * encodes them (SQLite JSON text, PostgreSQL text[]); metadata as JSON text on both.
 */
export function replacedAttributes(m: NewMemory): { column: string; value: unknown; field: KeepableField }[] {
  const all: { column: string; value: unknown; field: KeepableField }[] = [
    { field: 'type', column: 'type', value: m.type },
    { field: 'tags', column: 'tags', value: m.tags },
    { field: 'metadata', column: 'metadata', value: JSON.stringify(m.metadata) },
    { field: 'importance', column: 'importance', value: m.importance },
    { field: 'session', column: 'session_id', value: m.session },
    { field: 'expires_at', column: 'expires_at', value: m.expires_at },
  ];
  const keep = new Set(m.keep);
  return all.filter((a) => !keep.has(a.field));
}
