import type { RequestScope } from '../../core/scope.js';
import type { MemoryFilter } from './memory-filter.js';
import type { Memory } from './memory-types.js';

export type { MemoryFilter } from './memory-filter.js';

/** One memory to write. Times are ISO 8601 strings; the embedding is already computed (or null). */
export interface NewMemory {
  id: string;
  key: string | null;
  content: string;
  content_hash: string;
  type: string;
  tags: string[];
  metadata: Record<string, unknown>;
  importance: number;
  project: string | null;
  session: string | null;
  created_at: string;
  expires_at: string | null;
  /** When the fact starts and stops being true (null: always); recall leaves out facts not valid now. */
  valid_from: string | null;
  valid_to: string | null;
  embedding: Float32Array | null;
  embedding_model: string | null;
  /** No vector yet: the memory joins the embedding queue, and the background embedder adds one. */
  embed_later?: boolean;
  /**
   * Attributes the caller did not give (their values above are defaults). A keyed write that finds a
   * live memory with its key keeps that memory's values of these instead of resetting them.
   */
  keep: KeepableField[];
  /**
   * A near-duplicate the service found (an unkeyed write only): the driver reinforces this memory instead
   * of storing the new one, in the same transaction, if it is still live and unkeyed; otherwise it stores
   * the new one as usual.
   */
  merge_into?: { id: string; similarity: number };
  /**
   * Merge into a rewording (an unkeyed write only): when no memory has the same normalised content, a
   * live unkeyed memory of the same project whose content is a rewording of this one (content-hash.ts,
   * rewordedHash: the same words in another order, other articles or edge punctuation) is reinforced
   * instead, as an exact duplicate would be. Off: such a memory is stored beside it.
   */
  merge_reworded?: boolean;
  /**
   * The live memory this one replaces (remember's `supersedes`): in the same transaction the driver
   * keeps its statement as a version, sets its `superseded_by` to the written memory's id and ends its
   * validity when the new statement's begins (valid_from, else created_at), unless it ended before.
   * A memory that is not live, or was superseded already, refuses the whole batch (INVALID_INPUT on
   * `supersedes`). Nothing is done when the write lands on that memory itself (a repeat of it).
   */
  supersedes?: string | null;
}

/** Attributes a keyed write keeps from the memory it updates unless the caller gives them. */
export type KeepableField = 'type' | 'tags' | 'metadata' | 'importance' | 'session' | 'expires_at';

export interface WriteOutcome {
  id: string;
  status: 'created' | 'updated' | 'duplicate';
  /**
   * With `duplicate`: what matched. `exact`: the same normalised content; `reworded`: a rewording of it
   * (NewMemory.merge_reworded); `similar`: the near-duplicate in `merge_into`, whose cosine similarity is
   * `similarity`. Either way the existing memory was
   * reinforced (see {@link MemoryStore.insert}).
   */
  deduplicated?: 'exact' | 'reworded' | 'similar';
  similarity?: number;
}

export interface ListQuery extends MemoryFilter {
  limit: number;
  offset: number;
  sort: 'created_at' | 'updated_at' | 'accessed_at' | 'importance' | 'memory_score';
  order: 'asc' | 'desc';
}

/** A memory picked by key: keys are unique per tenant and project (null project = global). */
export type MemoryTarget = { id: string } | { key: string; project: string | null };

/** What forget removes: one memory, the memories matching a filter, or (only when asked so) all. */
export type ForgetTarget =
  | MemoryTarget
  | { filter: MemoryFilter }
  | { all: true }
  /** The TTL job's: memories whose expires_at has passed (at most `limit` of them), purged with hard. */
  | { expired: true; limit: number };

export interface MemoryPatch {
  content?: string;
  content_hash?: string;
  type?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  importance?: number;
  expires_at?: string | null;
  valid_from?: string | null;
  valid_to?: string | null;
  embedding?: Float32Array | null;
  embedding_model?: string | null;
  /** With new content and no vector: the memory joins the embedding queue. */
  embed_later?: boolean;
}

/**
 * A state of a memory that a later write replaced: an update, or a keyed write with new content. The
 * store held it from `recorded_from` (the memory's creation, or the previous replacement) until
 * `recorded_to`; `valid_from`/`valid_to` are the fact's own validity as it was then.
 */
export interface MemoryVersion {
  version: number;
  content: string;
  type: string;
  tags: string[];
  metadata: Record<string, unknown>;
  importance: number;
  valid_from: string | null;
  valid_to: string | null;
  recorded_from: string;
  recorded_to: string;
  /** What replaced it: `updated` (update_memory) or `superseded` (a write with the same key). */
  change: 'updated' | 'superseded';
}

export interface CandidateQuery {
  /** Natural-language text for the full-text stage; the driver builds its own query syntax. */
  text: string;
  /** Query embedding for the vector stage, or null to skip it. */
  embedding: Float32Array | null;
  embedding_model: string | null;
  filter: MemoryFilter;
  /** How many candidates each stage returns at most. */
  limit: number;
  now: string;
}

export interface Candidates {
  /** Full-text hits, best first; score is the driver's relevance score, higher is better, > 0. */
  text: { id: string; score: number }[];
  /** Vector hits, best first; similarity is cosine similarity. */
  vector: { id: string; similarity: number }[];
  vector_search: 'exact' | 'approximate' | 'none';
  /** Cosine similarity to the query of every candidate with a vector of the query's model (both lists). */
  similarity: Map<string, number>;
  /** Every memory named in either list. */
  memories: Map<string, Memory>;
}

/**
 * The storage port of the memory module. Every method is async so that a networked driver (PostgreSQL)
 * can implement it unchanged, and every method is scoped to one tenant: no call reads or writes
 * another tenant's rows. Writes are atomic: a call either applies fully or not at all.
 */
export interface MemoryStore {
  /**
   * Writes memories in one transaction. A keyed memory updates the live memory with the same key in
   * the same project (`updated`): content and embedding are replaced, and the attributes listed in `keep`
   * stay as they were; an unkeyed memory whose content hash (or legacy hash) equals a live unkeyed
   * memory's in the same project, or that names a live `merge_into`, is not stored again (`duplicate`):
   * that memory is reinforced instead, in the same transaction: access_count + 1, accessed_at and
   * updated_at = the write's created_at, importance as `reinforcement()` (storage/memory-columns.ts)
   * says, and the write's tags, metadata and expiry merged in as `mergedAttributes()` says (tags the
   * union, metadata the write's keys over the old, expiry the later with none latest); its content, type
   * and session stay, and no version row is written.
   */
  insert(scope: RequestScope, memories: NewMemory[]): Promise<WriteOutcome[]>;
  get(scope: RequestScope, id: string, now: string): Promise<Memory | null>;
  getByKey(scope: RequestScope, key: string, project: string | null, now: string): Promise<Memory | null>;
  list(scope: RequestScope, query: ListQuery, now: string): Promise<{ items: Memory[]; total: number }>;
  /** Applies a patch; returns the new memory, or null when the target does not exist. */
  update(scope: RequestScope, target: MemoryTarget, patch: MemoryPatch, now: string): Promise<Memory | null>;
  /**
   * Soft-deletes (or with hard, purges) the matching live memories; returns their ids. A filter must add
   * at least one condition (see `hasFilterCondition`): a driver refuses one that selects everything, so
   * that only `{ all: true }` forgets every memory of the tenant.
   */
  forget(
    scope: RequestScope,
    target: ForgetTarget,
    options: { hard: boolean; now: string },
  ): Promise<string[]>;
  /**
   * What a tenant holds, for its quotas: memories not forgotten (expired ones still take room until
   * purged) and the bytes of their content and metadata (UTF-8, metadata as stored JSON).
   */
  usage(scope: RequestScope): Promise<{ memories: number; bytes: number }>;
  /** Full-text and vector candidates for recall, with the memories they name. */
  candidates(scope: RequestScope, query: CandidateQuery): Promise<Candidates>;
  /**
   * Records that these memories were returned by recall: access_count + 1, accessed_at = now. A driver
   * may batch these writes for a fraction of a second, provided its own reads show them.
   */
  touch(scope: RequestScope, ids: string[], now: string): Promise<void>;
  /**
   * A token that changes after any write that can change a recall of the tenant (memories written,
   * updated, forgotten, imported, given their queued vectors, moved between tiers), whichever process
   * or replica wrote it; touch does not change it. Recall's cache serves an answer only while the token
   * is the one it was made at. Cheap: it is read on every recall the cache could answer.
   */
  changeVersion(scope: RequestScope): Promise<string>;
  /** The replaced states of a live memory, oldest first (empty when it never changed), or null if none. */
  versions(scope: RequestScope, id: string, now: string): Promise<MemoryVersion[] | null>;
  /**
   * For each of these memories that was replaced since `asOf`, the state it had at `asOf` (the version
   * whose recorded_from ≤ asOf < recorded_to); memories unchanged since are not in the map.
   */
  versionsAt(scope: RequestScope, ids: string[], asOf: string): Promise<Map<string, MemoryVersion>>;
  /**
   * The tenant's states held at `asOf` that a later write replaced (recorded_from ≤ asOf < recorded_to),
   * at most `limit`, those replaced soonest after `asOf` first: what as_of searches besides current rows.
   */
  versionsHeldAt(
    scope: RequestScope,
    asOf: string,
    limit: number,
  ): Promise<(MemoryVersion & { memory_id: string })[]>;
  /**
   * The tenant's memories that were in the store at `asOf` and have left it since: forgotten (not
   * purged: a hard forget leaves no content) or expired by `now` and not yet purged by the ttl job; at
   * most `limit`, those gone soonest after `asOf` first. What as_of searches besides current rows.
   */
  goneSince(scope: RequestScope, asOf: string, now: string, limit: number): Promise<Memory[]>;
  /**
   * Live memories of a project for init: `important` puts the types in `priorityTypes` first, then by
   * importance and newest; `recent` is newest first; `total` counts them all.
   */
  overview(
    scope: RequestScope,
    options: { project: string | null; limit: number; priorityTypes: readonly string[]; now: string },
  ): Promise<{ important: Memory[]; recent: Memory[]; total: number }>;
}
