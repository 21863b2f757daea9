import { MEMORY_LIMITS } from '../modules/memory/memory-schemas.js';
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

/** The columns a version row keeps of a statement besides its content (MemoryVersion). */
const STATEMENT_COLUMNS = new Set(['type', 'tags', 'metadata', 'importance', 'valid_from', 'valid_to']);

/**
 * Of the attributes keyed write `m` replaces, those a version row records: a keyed write that changes
 * neither the content nor any of these (a plain repeat) changes no statement and writes no version;
 * one that changes only tags, say, writes one, as every update does.
 */
export function statementAttributes(m: NewMemory): { column: string; value: unknown }[] {
  return replacedAttributes(m).filter((a) => STATEMENT_COLUMNS.has(a.column));
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

/** The attributes of a memory that a duplicate's write merges its own into. */
export interface MergedAttributes {
  tags: string[];
  metadata: Record<string, unknown>;
  expires_at: string | null;
}

/**
 * What a duplicate `m` leaves of these attributes on the memory it reinforces, so that repeating a fact
 * never loses what the repeat said: tags are the old ones then the new ones not yet there (at most
 * MEMORY_LIMITS.tags, the old ones first); metadata is the old with the new keys over it (shallow), or the
 * new alone when that would pass MEMORY_LIMITS.metadataBytes (on PostgreSQL measured as jsonb's text); the
 * expiry is the later of the two, no expiry being later than any (a repeat without one makes the memory
 * permanent; a shorter one never shortens it). Type, session and content stay the memory's. SQLite
 * calls this inside its write lock; PostgreSQL computes the same in its reinforcing UPDATE.
 */
export function mergedAttributes(old: MergedAttributes, m: NewMemory): MergedAttributes {
  const room = Math.max(0, MEMORY_LIMITS.tags - old.tags.length);
  const added = m.tags.filter((tag) => !old.tags.includes(tag)).slice(0, room);
  const metadata = { ...old.metadata, ...m.metadata };
  return {
    tags: [...old.tags, ...added],
    // Never past the input limit: repeats with other keys would otherwise grow it without end.
    metadata:
      Buffer.byteLength(JSON.stringify(metadata)) > MEMORY_LIMITS.metadataBytes ? m.metadata : metadata,
    expires_at: laterExpiry(old.expires_at, m.expires_at),
  };
}

/** The later of two expiries, null (none) being the latest; ISO text compares as the stored columns do. */
function laterExpiry(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null;
  return [a, b].sort()[1] ?? a;
}
