import type { Candidates, MemoryVersion } from './memory-store.js';
import type { HistoryResult, Memory } from './memory-types.js';

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
export function candidatesAsOf(
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
    memories.set(id, {
      ...memory,
      content: state.content,
      type: state.type,
      tags: state.tags,
      metadata: state.metadata,
      importance: state.importance,
      valid_from: state.valid_from,
      valid_to: state.valid_to,
      updated_at: state.recorded_from,
    });
  }
  const kept = (id: string) => memories.has(id);
  return {
    ...candidates,
    memories,
    text: candidates.text.filter((h) => kept(h.id)),
    vector: candidates.vector.filter((h) => kept(h.id)),
  };
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
