import type { RequestScope } from '../../core/scope.js';
import type { MemoryStore, NewMemory, WriteOutcome } from './memory-store.js';
import type { RememberResult } from './memory-types.js';

/** Vector hits a write's near-duplicate check looks at (other projects' and keyed ones are skipped). */
const NEAR_DUPLICATE_CANDIDATES = 5;

/**
 * The nearest live unkeyed memory of the write's project at `threshold` cosine similarity or closer, or
 * null. Only an unkeyed write with an inline vector is compared (a keyed one updates its key; a queued
 * one has no vector yet), and only with memories already stored, not with others of its own batch.
 */
export async function findNearDuplicate(
  store: MemoryStore,
  scope: RequestScope,
  row: NewMemory,
  threshold: number,
): Promise<{ id: string; similarity: number } | null> {
  if (row.key !== null || !row.embedding || !row.embedding_model) return null;
  const found = await store.candidates(scope, {
    text: '',
    embedding: row.embedding,
    embedding_model: row.embedding_model,
    filter: { ...(row.project !== null ? { project: row.project } : {}), include_cold: true },
    limit: NEAR_DUPLICATE_CANDIDATES,
    now: row.created_at,
  });
  for (const hit of found.vector) {
    if (hit.similarity < threshold) break;
    const memory = found.memories.get(hit.id);
    // Without a project the filter cannot say "global only": other projects' hits are skipped here.
    if (memory && memory.key === null && memory.project === row.project)
      return { id: hit.id, similarity: hit.similarity };
  }
  return null;
}

/**
 * Marks each row of a batch that has a near-duplicate (`merge_into`), unless its input said
 * `dedupe: false`. Sequential: each check is one vector search of the store.
 */
export async function markNearDuplicates(
  store: MemoryStore,
  scope: RequestScope,
  rows: NewMemory[],
  inputs: readonly { dedupe?: boolean | undefined }[],
  threshold: number | null,
): Promise<void> {
  if (threshold === null) return;
  for (const [i, row] of rows.entries()) {
    // A write that supersedes a memory states something new by intent: merged into a near-duplicate
    // (the memory it supersedes, often) it would be lost.
    if (inputs[i]?.dedupe === false || row.supersedes) continue;
    const near = await findNearDuplicate(store, scope, row, threshold);
    if (near) row.merge_into = near;
  }
}

/** A store outcome as remember answers it. */
export function toRememberResult(outcome: WriteOutcome): RememberResult {
  return { id: outcome.id, status: outcome.status, deduplicated: outcome.status === 'duplicate' };
}
