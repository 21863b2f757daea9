/** A memory as the service returns it on every surface (snake_case, the wire format). */
export interface Memory {
  id: string;
  key: string | null;
  content: string;
  type: string;
  tags: string[];
  metadata: Record<string, unknown>;
  importance: number;
  project: string | null;
  session: string | null;
  storage_tier: StorageTier;
  memory_score: number;
  access_count: number;
  created_at: string;
  updated_at: string;
  accessed_at: string | null;
  expires_at: string | null;
}

export type StorageTier = 'hot' | 'warm' | 'cold';

/** Why a hit matched: every signal that went into its score. Null means the signal did not find it. */
export interface RecallSignals {
  text_rank: number | null;
  /** The full-text score (BM25F on SQLite, weighted ts_rank on PostgreSQL); only its ratio to the best hit's counts. */
  text_score: number | null;
  vector_rank: number | null;
  vector_similarity: number | null;
  /** Text and vector evidence fused, 0..1, before the recency/importance/access boost. */
  relevance: number;
  recency: number;
  importance: number;
  access: number;
}

export interface RecallHit {
  id: string;
  content: string;
  type: string;
  tags: string[];
  key: string | null;
  project: string | null;
  session: string | null;
  importance: number;
  created_at: string;
  score: number;
  signals: RecallSignals;
}

/**
 * Why recall ran on text alone: no embedder is configured, the embedder failed, or it gave the query no
 * vector (the query has no words it can use, e.g. "!!!").
 */
export type TextOnlyReason = 'no-embedder' | 'embedder-failed' | 'embedder-unavailable' | 'no-query-vector';

/** Each text-only reason as every surface words it for a reader. */
export const TEXT_ONLY_REASONS: Record<TextOnlyReason, string> = {
  'no-embedder': 'no embedder is configured',
  'embedder-failed': 'the embedder failed',
  'embedder-unavailable': 'the embedder is unavailable',
  'no-query-vector': 'the query has no words to search by meaning',
};

/** How recall ran. `text-only` says why the vector stage was skipped. */
export type RecallMode = 'hybrid' | 'text-only';

export interface RecallResult {
  mode: RecallMode;
  reason?: TextOnlyReason;
  /** For embedder-unavailable: why (an open circuit and until when, a model that did not load). */
  detail?: string;
  vector_search?: 'exact' | 'approximate' | 'none';
  hits: RecallHit[];
}

export interface RememberResult {
  id: string;
  /**
   * created: a new memory; updated: the key existed, its content was replaced and the attributes given
   * were changed (the others kept); duplicate: the same content is already stored.
   */
  status: 'created' | 'updated' | 'duplicate';
}

export interface ListResult {
  items: Memory[];
  total: number;
  next_offset: number | null;
}

export interface ForgetResult {
  /** How many memories were forgotten. */
  forgotten: number;
  /** Their ids, at most MEMORY_LIMITS.forgetIdsShown of them. */
  ids: string[];
  /** true when `ids` lists fewer than `forgotten`. */
  ids_truncated: boolean;
  hard: boolean;
}
