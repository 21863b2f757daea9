import { z } from 'zod';

/**
 * An object schema for a result every surface returns. At run time it is loose: its JSON Schema allows
 * more fields (`additionalProperties: {}`), so a field added to a result later does not make clients that
 * validate against an older schema reject it. Its type lists just the declared fields, as an interface
 * would: a store or service that adds an undeclared field to an object literal fails to compile instead
 * of putting the field on the wire.
 */
export function outputObject<S extends z.ZodRawShape>(shape: S): z.ZodObject<S, z.core.$strip> {
  // The cast changes only the inferred type (no `[k: string]: unknown` index signature), never parsing.
  return z.looseObject(shape) as unknown as z.ZodObject<S, z.core.$strip>;
}

export const storageTierSchema = z.enum(['hot', 'warm', 'cold']);
export type StorageTier = z.infer<typeof storageTierSchema>;

/** A memory as the service returns it on every surface (snake_case, the wire format). */
export const memorySchema = outputObject({
  id: z.string(),
  key: z.string().nullable(),
  content: z.string(),
  type: z.string(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  importance: z.number(),
  project: z.string().nullable(),
  session: z.string().nullable(),
  storage_tier: storageTierSchema,
  memory_score: z.number(),
  access_count: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
  accessed_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  /** When the fact starts and stops being true (null: always). Recall leaves out facts not valid now. */
  valid_from: z.string().nullable(),
  valid_to: z.string().nullable(),
  /** The memory that replaced this one (remember's `supersedes`); null: none did. */
  superseded_by: z.string().nullable(),
});
export type Memory = z.infer<typeof memorySchema>;

/** One state of a memory in its history: a replaced one (recorded_to set) or the current one (null). */
export const memoryVersionSchema = outputObject({
  version: z.number(),
  content: z.string(),
  type: z.string(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  importance: z.number(),
  valid_from: z.string().nullable(),
  valid_to: z.string().nullable(),
  /** The store held this state from recorded_from until recorded_to (null: it still does). */
  recorded_from: z.string(),
  recorded_to: z.string().nullable(),
  /** What ended it: updated (an update) or superseded (a write with the same key); null: current. */
  change: z.enum(['updated', 'superseded']).nullable(),
});
export type MemoryVersionOutput = z.infer<typeof memoryVersionSchema>;

/** memory_history's answer: every state of the memory, oldest first; the last is the current one. */
export const historyResultSchema = outputObject({
  id: z.string(),
  key: z.string().nullable(),
  versions: z.array(memoryVersionSchema),
});
export type HistoryResult = z.infer<typeof historyResultSchema>;

/** remember's answer. */
export const rememberResultSchema = outputObject({
  id: z.string(),
  /**
   * created: a new memory; updated: the key existed, its content was replaced and the attributes given
   * were changed (the others kept); duplicate: the same content is already stored.
   */
  status: z.enum(['created', 'updated', 'duplicate']),
  /**
   * True when the write was not stored because it repeats a memory (`id` is that memory's): the same
   * normalised content, or a near-duplicate at the threshold or closer (the store reports the
   * similarity, WriteOutcome.similarity; it is not returned, to keep the tool definition in its budget). The existing
   * memory was reinforced (access count + 1, importance raised, updated_at now).
   */
  deduplicated: z.boolean(),
});
export type RememberResult = z.infer<typeof rememberResultSchema>;

/** Why a hit matched: every signal that went into its score. Null means the signal did not find it. */
export const recallSignalsSchema = outputObject({
  text_rank: z.number().nullable(),
  /**
   * The full-text score (BM25F on SQLite, weighted ts_rank on PostgreSQL); only its ratio to the best
   * hit's counts.
   */
  text_score: z.number().nullable(),
  vector_rank: z.number().nullable(),
  vector_similarity: z.number().nullable(),
  /** Text and vector evidence fused, 0..1, before the recency/importance/access boost. */
  relevance: z.number(),
  recency: z.number(),
  importance: z.number(),
  access: z.number(),
});
export type RecallSignals = z.infer<typeof recallSignalsSchema>;

/** One recall hit: the memory's readable fields, its score and the signals behind it. */
export const recallHitSchema = outputObject({
  id: z.string(),
  content: z.string(),
  type: z.string(),
  tags: z.array(z.string()),
  key: z.string().nullable(),
  project: z.string().nullable(),
  session: z.string().nullable(),
  importance: z.number(),
  created_at: z.string(),
  score: z.number(),
  signals: recallSignalsSchema,
});
export type RecallHit = z.infer<typeof recallHitSchema>;

/**
 * Why recall ran on text alone: no embedder is configured, the embedder failed, or it gave the query no
 * vector (the query has no words it can use, e.g. "!!!").
 */
export const textOnlyReasonSchema = z.enum([
  'no-embedder',
  'embedder-failed',
  'embedder-unavailable',
  'no-query-vector',
]);
export type TextOnlyReason = z.infer<typeof textOnlyReasonSchema>;

/** Each text-only reason as every surface words it for a reader. */
export const TEXT_ONLY_REASONS: Record<TextOnlyReason, string> = {
  'no-embedder': 'no embedder is configured',
  'embedder-failed': 'the embedder failed',
  'embedder-unavailable': 'the embedder is unavailable',
  'no-query-vector': 'the query has no words to search by meaning',
};

/** How recall ran. `text-only` says why the vector stage was skipped. */
export const recallModeSchema = z.enum(['hybrid', 'text-only']);
export type RecallMode = z.infer<typeof recallModeSchema>;

/** recall's answer: the hits, best first, and how the search ran. */
export const recallResultSchema = outputObject({
  mode: recallModeSchema,
  reason: textOnlyReasonSchema.optional(),
  /** For embedder-unavailable: why (an open circuit and until when, a model that did not load). */
  detail: z.string().optional(),
  vector_search: z.enum(['exact', 'approximate', 'none']).optional(),
  hits: z.array(recallHitSchema),
  /** With `session`: that session's recent matching episodes (episodic buffer), best first. */
  episodes: z
    .array(
      outputObject({
        id: z.string(),
        role: z.string(),
        content: z.string(),
        occurred_at: z.string(),
        score: z.number(),
      }),
    )
    .optional(),
});
export type RecallResult = z.infer<typeof recallResultSchema>;

/** list_memories' answer: one page of memories; next_offset is null on the last page. */
export const listResultSchema = outputObject({
  items: z.array(memorySchema),
  total: z.number(),
  next_offset: z.number().nullable(),
});
export type ListResult = z.infer<typeof listResultSchema>;

/** forget's answer. */
export const forgetResultSchema = outputObject({
  /** How many memories were forgotten. */
  forgotten: z.number(),
  /** Their ids, at most MEMORY_LIMITS.forgetIdsShown of them. */
  ids: z.array(z.string()),
  /** true when `ids` lists fewer than `forgotten`. */
  ids_truncated: z.boolean(),
  hard: z.boolean(),
});
export type ForgetResult = z.infer<typeof forgetResultSchema>;
