import type { RequestScope } from '../../core/scope.js';
import { searchTokens } from '../search/text-tokens.js';
import type { MemoryFilter } from './memory-filter.js';
import type { Candidates, MemoryStore, MemoryVersion } from './memory-store.js';
import type { HistoryResult, Memory } from './memory-types.js';

/** Replaced states as_of reads at most per recall, those replaced soonest after as_of first. */
const AS_OF_VERSION_SCAN = 5000;

/**
 * Versions and time. A memory's row holds its current statement; every state an update or a keyed write
 * replaced is a version row (MemoryStore.versions), recorded from the previous replacement (or the
 * memory's creation) until the write that replaced it. Pure: the store reads the rows.
 */

/** Whether a fact with this validity is true at `at` (ISO; null bounds are open). */
export function validAt(fact: { valid_from: string | null; valid_to: string | null }, at: string): boolean {
  const t = Date.parse(at);
  if (fact.valid_from !== null && Date.parse(fact.valid_from) > t) return false;
  if (fact.valid_to !== null && Date.parse(fact.valid_to) <= t) return false;
  return true;
}

/**
 * Recall's candidates as the store stood at `asOf`: each memory replaced since then reads as the state
 * it had then (`states`, from MemoryStore.versionsAt), and one whose statement then was not valid at
 * `asOf` leaves the candidates. Which memories are candidates was decided on their current text and
 * vector; the store keeps no index of replaced states.
 */
function candidatesAsOf(
  candidates: Candidates,
  states: ReadonlyMap<string, MemoryVersion>,
  asOf: string,
): Candidates {
  if (states.size === 0) return candidates;
  const memories = new Map<string, Memory>();
  for (const [id, memory] of candidates.memories) {
    const state = states.get(id);
    if (!state) {
      memories.set(id, memory);
      continue;
    }
    if (!validAt(state, asOf)) continue;
    memories.set(id, asState(memory, state));
  }
  const kept = (id: string) => memories.has(id);
  return {
    ...candidates,
    memories,
    text: candidates.text.filter((h) => kept(h.id)),
    vector: candidates.vector.filter((h) => kept(h.id)),
  };
}

/** A memory as it read in an older state. */
function asState(memory: Memory, state: MemoryVersion): Memory {
  return {
    ...memory,
    content: state.content,
    type: state.type,
    tags: state.tags,
    metadata: state.metadata,
    importance: state.importance,
    valid_from: state.valid_from,
    valid_to: state.valid_to,
    updated_at: state.recorded_from,
  };
}

/** Whether a memory (as it read at as_of) passes recall's filter. */
function passes(memory: Memory, filter: MemoryFilter, asOf: string): boolean {
  if (filter.project !== undefined && memory.project !== filter.project) return false;
  if (filter.session !== undefined && memory.session !== filter.session) return false;
  if (filter.types?.length && !filter.types.includes(memory.type)) return false;
  if (filter.tags?.some((t) => !memory.tags.includes(t))) return false;
  const created = Date.parse(memory.created_at);
  if (filter.since !== undefined && created < Date.parse(filter.since)) return false;
  if (filter.until !== undefined && created >= Date.parse(filter.until)) return false;
  if (!filter.include_cold && memory.storage_tier === 'cold') return false;
  return created <= Date.parse(asOf) && validAt(memory, asOf);
}

/**
 * Recall's candidates at `asOf`: those found on current text and vectors, read as they stood then
 * (candidatesAsOf), and the memories the current index cannot find whose statement then shares the
 * query's words: a state replaced since, or a memory that has left the store since (forgotten, not
 * purged; expired, not yet purged by the ttl job), as it read then. Those join the text hits with the
 * share of the query's terms they hold, scaled to the best text score, so fusion weighs them like any
 * text hit.
 */
export async function recallCandidatesAsOf(
  store: MemoryStore,
  scope: RequestScope,
  found: Candidates,
  query: { text: string; filter: MemoryFilter; asOf: string; now: string; limit: number },
): Promise<Candidates> {
  const { asOf } = query;
  const current = candidatesAsOf(
    found,
    await store.versionsAt(scope, [...found.memories.keys()], asOf),
    asOf,
  );
  const terms = new Set(searchTokens(query.text));
  if (terms.size === 0) return current;
  const [held, gone] = await Promise.all([
    store.versionsHeldAt(scope, asOf, AS_OF_VERSION_SCAN),
    store.goneSince(scope, asOf, query.now, AS_OF_VERSION_SCAN),
  ]);
  // Each memory's statement at asOf, for those not found: its replaced state, else (gone since, not
  // replaced since) its row as it is.
  const goneRows = new Map(gone.map((m) => [m.id, m]));
  const statements = new Map<string, { content: string; tags: string[]; state: MemoryVersion | null }>();
  for (const v of held) if (!found.memories.has(v.memory_id)) statements.set(v.memory_id, { ...v, state: v });
  for (const m of gone)
    if (!found.memories.has(m.id) && !statements.has(m.id)) statements.set(m.id, { ...m, state: null });
  const matches = [...statements]
    .map(([id, statement]) => {
      const words = new Set(searchTokens(`${statement.content} ${statement.tags.join(' ')}`));
      let shared = 0;
      for (const t of terms) if (words.has(t)) shared++;
      return { id, state: statement.state, share: shared / terms.size };
    })
    .filter((m) => m.share > 0)
    .sort((a, b) => b.share - a.share)
    .slice(0, query.limit);
  if (matches.length === 0) return current;
  const memories = new Map(current.memories);
  const text = [...current.text];
  const best = current.text[0]?.score ?? 1;
  // The memories still in the store read side by side (one round trip each on PostgreSQL, at once
  // rather than in turn); the gone ones came with goneSince.
  const rows = await Promise.all(
    matches.map(({ id }) => goneRows.get(id) ?? store.get(scope, id, query.now)),
  );
  for (const [i, { state, share }] of matches.entries()) {
    const memory = rows[i];
    if (!memory) continue;
    const then = state ? asState(memory, state) : memory;
    if (!passes(then, query.filter, asOf)) continue;
    memories.set(then.id, then);
    text.push({ id: then.id, score: best * share });
  }
  text.sort((a, b) => b.score - a.score);
  return { ...current, memories, text };
}

/** A memory's history: its replaced states oldest first, then its current one (recorded_to null). */
export function historyOf(memory: Memory, versions: readonly MemoryVersion[]): HistoryResult {
  const last = versions.at(-1);
  return {
    id: memory.id,
    key: memory.key,
    versions: [
      ...versions.map((v) => ({ ...v })),
      {
        version: (last?.version ?? 0) + 1,
        content: memory.content,
        type: memory.type,
        tags: memory.tags,
        metadata: memory.metadata,
        importance: memory.importance,
        valid_from: memory.valid_from,
        valid_to: memory.valid_to,
        recorded_from: last?.recorded_to ?? memory.created_at,
        recorded_to: null,
        change: null,
      },
    ],
  };
}
