import type { Clock } from '../../core/clock.js';
import { invalidInput, notFound } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import { parseInput } from '../../core/validation.js';
import { type Embedder, usableVector } from '../embeddings/embedder.js';
import {
  accessScore,
  DEFAULT_RERANK_WEIGHTS,
  fuseScores,
  recencyScore,
  rerankScore,
} from '../search/fuse-scores.js';
import { VECTOR_POLICIES, type VectorPolicy } from '../search/vector-policy.js';
import { contentHash } from './content-hash.js';
import {
  forgetSchema,
  getSchema,
  listSchema,
  MEMORY_LIMITS,
  type RememberInput,
  recallSchema,
  rememberManySchema,
  rememberSchema,
  updateSchema,
} from './memory-schemas.js';
import type {
  Candidates,
  ForgetTarget,
  KeepableField,
  MemoryFilter,
  MemoryPatch,
  MemoryStore,
  MemoryTarget,
  NewMemory,
} from './memory-store.js';
import type {
  ForgetResult,
  ListResult,
  Memory,
  RecallHit,
  RecallResult,
  RememberResult,
} from './memory-types.js';
import type { QuotaGate } from './quota.js';

export interface MemoryServiceConfig {
  store: MemoryStore;
  /** null: recall runs text-only and says so. */
  embedder: Embedder | null;
  clock: Clock;
  logger: Logger;
  /** Overrides of the embedder's fusion weight and relevance floor (see VECTOR_POLICIES). */
  vectorPolicy?: Partial<VectorPolicy>;
  /**
   * Why the configured embedder could not be loaded (recall says `embedder-unavailable`); writes then
   * queue their vectors for when it loads.
   */
  embedderProblem?: string;
  /** Called after a write queued memories for the background embedder. */
  onQueued?: () => void;
  /** Refuses writes while maintenance mode is on (MAINTENANCE); reads never ask it. */
  maintenance?: WriteGate;
  /** The tenant quotas, asked before memories are added (QUOTA_EXCEEDED); none: no quotas. */
  quota?: QuotaGate;
}

/** What a service asks before it writes: throws when writes are refused (maintenance mode). */
export interface WriteGate {
  assertWritable(action: string): Promise<void>;
}

export interface MemoryService {
  remember(scope: RequestScope, input: unknown): Promise<RememberResult>;
  rememberMany(scope: RequestScope, input: unknown): Promise<RememberResult[]>;
  recall(scope: RequestScope, input: unknown): Promise<RecallResult>;
  get(scope: RequestScope, input: unknown): Promise<Memory>;
  list(scope: RequestScope, input: unknown): Promise<ListResult>;
  update(scope: RequestScope, input: unknown): Promise<Memory>;
  forget(scope: RequestScope, input: unknown): Promise<ForgetResult>;
  /** Lookups of recall's query-vector cache since start (metrics). */
  cacheStats(): { hits: number; misses: number };
}

/**
 * How many candidates each retrieval stage brings to fusion, at least; recall asks each for
 * max(MIN_CANDIDATES, 2k). Measured at 100k memories (npm run bench -- recall), 3k instead of 2k cost
 * ~0.2 ms more per recall (p50 1.80 vs 1.60 ms) for a top-10 hit rate higher by 0.6 points on keyword
 * queries and 1.2 on paraphrases: re-scoring, filtering and reading the extra rows is most of a recall.
 */
const MIN_CANDIDATES = 20;
/** Query vectors kept (oldest dropped first). */
const QUERY_CACHE_SIZE = 256;
const CANDIDATES_PER_RESULT = 2;

/**
 * The best `k` candidates by fused score and boost, best first (ties by id). A memory no query word
 * matched needs a similarity of at least the policy's `evidence` to be returned, so an unrelated query
 * returns nothing. Every candidate is scored, but only the
 * top `k` become hits with their signals: recall sees ~50 candidates and returns 10, and building the
 * rest was most of what a recall allocated outside the store.
 */
function rankHits(
  candidates: Candidates,
  now: Date,
  policy: VectorPolicy | null,
  k: number,
  minScore: number,
): RecallHit[] {
  const textIds = candidates.text.map((h) => h.id);
  const vectorIds = candidates.vector.map((h) => h.id);
  const textScore = new Map(candidates.text.map((h) => [h.id, h.score]));
  const { similarity } = candidates;
  const bestText = candidates.text[0]?.score ?? 0;
  const scored: {
    id: string;
    memory: Memory;
    relevance: number;
    boost: ReturnType<typeof boostOf>;
    score: number;
  }[] = [];
  for (const id of new Set([...textIds, ...vectorIds])) {
    const memory = candidates.memories.get(id);
    if (!memory) continue;
    const evidence = { text: textScore.get(id) ?? 0, similarity: similarity.get(id) ?? null };
    // No word of the query matched and the vector is not close enough on its own: no evidence.
    if (evidence.text <= 0 && (!policy || (evidence.similarity ?? -1) < policy.evidence)) continue;
    const relevance = fuseScores(evidence, bestText, policy);
    if (relevance <= 0) continue;
    const boost = boostOf(memory, now);
    const score = rerankScore(relevance, boost);
    if (score >= minScore) scored.push({ id, memory, relevance, boost, score });
  }
  scored.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));
  return scored.slice(0, k).map(({ id, memory, relevance, boost, score }): RecallHit => {
    const textAt = textIds.indexOf(id);
    const vectorAt = vectorIds.indexOf(id);
    return {
      id,
      content: memory.content,
      type: memory.type,
      tags: memory.tags,
      key: memory.key,
      project: memory.project,
      session: memory.session,
      importance: memory.importance,
      created_at: memory.created_at,
      score,
      signals: {
        text_rank: textAt < 0 ? null : textAt + 1,
        text_score: candidates.text[textAt]?.score ?? null,
        vector_rank: vectorAt < 0 ? null : vectorAt + 1,
        vector_similarity: similarity.get(id) ?? null,
        relevance,
        ...boost,
      },
    };
  });
}

function boostOf(memory: Memory, now: Date): { recency: number; importance: number; access: number } {
  return {
    recency: recencyScore(memory.created_at, now, DEFAULT_RERANK_WEIGHTS.halfLifeDays),
    importance: memory.importance,
    access: accessScore(memory.access_count),
  };
}

/** Bytes of memory text an answer carries for one memory: its content and its metadata as JSON. */
function answerBytes(memory: { content: string; metadata?: Record<string, unknown> }): number {
  const metadata = memory.metadata === undefined ? 0 : Buffer.byteLength(JSON.stringify(memory.metadata));
  return Buffer.byteLength(memory.content) + metadata;
}

/**
 * The longest prefix of `items` whose memory text fits in MEMORY_LIMITS.responseBytes, and never fewer
 * than one item: one memory is at most 80 KiB, so any answer stays near the budget.
 */
function withinResponseBudget<T extends { content: string; metadata?: Record<string, unknown> }>(
  items: T[],
): T[] {
  let used = 0;
  for (let i = 0; i < items.length; i++) {
    used += answerBytes(items[i] as T);
    if (used > MEMORY_LIMITS.responseBytes && i > 0) return items.slice(0, i);
  }
  return items;
}

/** The attributes of a remember input that the caller left out (and so defaults fill). */
function keptFields(input: RememberInput): KeepableField[] {
  const kept: KeepableField[] = [];
  if (input.type === undefined) kept.push('type');
  if (input.tags === undefined) kept.push('tags');
  if (input.metadata === undefined) kept.push('metadata');
  if (input.importance === undefined) kept.push('importance');
  if (input.session === undefined) kept.push('session');
  if (input.ttl_seconds === undefined && input.expires_at === undefined) kept.push('expires_at');
  return kept;
}

/**
 * An expiry at or before now would store a memory that no read ever returns: refuse it instead, naming
 * the field (`expires_at`, or `3.expires_at` in a batch).
 */
function requireFutureExpiry(expiresAt: string | null | undefined, now: Date, field: string): void {
  if (expiresAt === undefined || expiresAt === null) return;
  if (Date.parse(expiresAt) <= now.getTime()) {
    throw invalidInput(
      field,
      `must be in the future (it is ${expiresAt}, now is ${now.toISOString()}); to forget a memory now, call forget`,
    );
  }
}

/**
 * The memory service: validates every input with the module's schemas, computes embeddings, and runs
 * hybrid recall (full text + vectors fused by reciprocal rank, re-ranked by recency, importance, access).
 */
export function createMemoryService(config: MemoryServiceConfig): MemoryService {
  const { store, embedder, clock, logger } = config;
  const policy: VectorPolicy | null = embedder
    ? { ...VECTOR_POLICIES[embedder.provider], ...config.vectorPolicy }
    : null;

  /** Query vectors of recent queries: an assistant often asks the same thing twice. */
  const queryVectors = new Map<string, Float32Array | null>();

  const cache = { hits: 0, misses: 0 };

  async function embedQuery(query: string): Promise<Float32Array | null> {
    if (!embedder) return null;
    const cached = queryVectors.get(query);
    if (cached !== undefined) {
      cache.hits++;
      return cached;
    }
    cache.misses++;
    const [vector] = await embedder.embed([query]);
    const usable = usableVector(vector);
    if (queryVectors.size >= QUERY_CACHE_SIZE)
      queryVectors.delete(queryVectors.keys().next().value as string);
    queryVectors.set(query, usable);
    return usable;
  }

  /**
   * Vectors for content being written, or null for each when they come later: a provider that is not
   * inline (slow or remote), unavailable, not loaded, or failing leaves them to the embedding queue, so
   * a write never waits for or fails on the embedder.
   */
  async function embedForWrite(
    texts: string[],
  ): Promise<{ vectors: (Float32Array | null)[]; later: boolean }> {
    const none = { vectors: texts.map(() => null), later: false };
    if (!embedder) return { ...none, later: config.embedderProblem !== undefined };
    if (!embedder.inline || embedder.unavailable?.()) return { ...none, later: true };
    try {
      const vectors = await embedder.embed(texts);
      return { vectors: texts.map((_, i) => usableVector(vectors[i])), later: false };
    } catch (error) {
      logger.warn({ err: error, count: texts.length }, 'embedder failed; the vectors are queued');
      return { ...none, later: true };
    }
  }

  function toNewMemory(
    input: RememberInput,
    embedding: Float32Array | null,
    later: boolean,
    now: Date,
  ): NewMemory {
    const expiresAt =
      input.ttl_seconds !== undefined
        ? new Date(now.getTime() + input.ttl_seconds * 1000).toISOString()
        : input.expires_at !== undefined
          ? new Date(input.expires_at).toISOString()
          : null;
    return {
      id: newId('mem', now.getTime()),
      key: input.key ?? null,
      content: input.content,
      content_hash: contentHash(input.content),
      type: input.type ?? 'fact',
      tags: input.tags ?? [],
      metadata: input.metadata ?? {},
      importance: input.importance ?? 0.5,
      project: input.project ?? null,
      session: input.session ?? null,
      created_at: now.toISOString(),
      expires_at: expiresAt,
      embedding,
      embedding_model: embedding ? (embedder?.model ?? null) : null,
      embed_later: later,
      keep: keptFields(input),
    };
  }

  async function writeMany(
    scope: RequestScope,
    inputs: RememberInput[],
    fieldPrefix: (i: number) => string,
  ): Promise<RememberResult[]> {
    const now = clock.now();
    inputs.forEach((input, i) => {
      requireFutureExpiry(input.expires_at, now, `${fieldPrefix(i)}expires_at`);
    });
    if (config.quota) {
      let bytes = 0;
      for (const input of inputs)
        bytes += Buffer.byteLength(input.content) + Buffer.byteLength(JSON.stringify(input.metadata ?? {}));
      await config.quota.assertRoom(scope, { memories: inputs.length, bytes });
    }
    const { vectors, later } = await embedForWrite(inputs.map((i) => i.content));
    const rows = inputs.map((input, i) => toNewMemory(input, vectors[i] ?? null, later, now));
    const results = await store.insert(scope, rows);
    if (later) config.onQueued?.();
    return results;
  }

  function targetOf(v: { id?: string; key?: string; project?: string }): MemoryTarget {
    return v.id !== undefined ? { id: v.id } : { key: v.key as string, project: v.project ?? null };
  }

  function describeTarget(target: MemoryTarget): string {
    return 'id' in target
      ? target.id
      : `key ${target.key}${target.project ? ` in project ${target.project}` : ''}`;
  }

  return {
    cacheStats() {
      return { ...cache };
    },

    async remember(scope, input) {
      const parsed = parseInput(rememberSchema, input);
      await config.maintenance?.assertWritable('remember');
      const [result] = await writeMany(scope, [parsed], () => '');
      return result as RememberResult;
    },

    async rememberMany(scope, input) {
      const parsed = parseInput(rememberManySchema, input);
      await config.maintenance?.assertWritable('remember');
      return writeMany(scope, parsed, (i) => `${i}.`);
    },

    async recall(scope, input) {
      const q = parseInput(recallSchema, input);
      const k = q.k ?? 10;
      const now = clock.now();
      let embedding: Float32Array | null = null;
      let reason: RecallResult['reason'];
      let detail: string | undefined;
      const unavailable = embedder?.unavailable?.() ?? config.embedderProblem ?? null;
      if (unavailable !== null) {
        reason = 'embedder-unavailable';
        detail = unavailable;
      } else if (!embedder) reason = 'no-embedder';
      else {
        try {
          embedding = await embedQuery(q.query);
          // The embedder ran but found nothing to go on ("!!!", only stopwords): say so, not no-embedder.
          if (!embedding) reason = 'no-query-vector';
        } catch (error) {
          // The embedder failing must not fail recall: full text still answers, and the result says so.
          logger.warn({ err: error }, 'embedder failed; recall falls back to text-only');
          reason = 'embedder-failed';
        }
      }
      const filter: MemoryFilter = {
        project: q.project,
        session: q.session,
        types: q.types,
        tags: q.tags,
        since: q.since,
        until: q.until,
        include_cold: q.include_cold,
      };
      const candidates = await store.candidates(scope, {
        text: q.query,
        embedding: embedding ?? null,
        embedding_model: embedding ? (embedder?.model ?? null) : null,
        filter,
        limit: Math.max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT),
        now: now.toISOString(),
      });
      const top = withinResponseBudget(
        rankHits(candidates, now, embedding ? policy : null, k, q.min_score ?? 0),
      );
      if (top.length > 0)
        await store.touch(
          scope,
          top.map((h) => h.id),
          now.toISOString(),
        );
      const result: RecallResult = {
        mode: embedding ? 'hybrid' : 'text-only',
        vector_search: candidates.vector_search,
        hits: top,
      };
      if (!embedding && reason) result.reason = reason;
      if (!embedding && detail) result.detail = detail;
      return result;
    },

    async get(scope, input) {
      const { id } = parseInput(getSchema, input);
      const memory = await store.get(scope, id, clock.now().toISOString());
      if (!memory) throw notFound('memory', id);
      return memory;
    },

    async list(scope, input) {
      const q = parseInput(listSchema, input);
      const limit = q.limit ?? 20;
      const offset = q.offset ?? 0;
      const page = await store.list(
        scope,
        { ...q, limit, offset, sort: q.sort ?? 'created_at', order: q.order ?? 'desc' },
        clock.now().toISOString(),
      );
      const { total } = page;
      const items = withinResponseBudget(page.items);
      return { items, total, next_offset: offset + items.length < total ? offset + items.length : null };
    },

    async update(scope, input) {
      const u = parseInput(updateSchema, input);
      await config.maintenance?.assertWritable('update');
      const now = clock.now();
      requireFutureExpiry(u.expires_at, now, 'expires_at');
      const patch: MemoryPatch = {
        type: u.type,
        tags: u.tags,
        metadata: u.metadata,
        importance: u.importance,
      };
      if (u.expires_at !== undefined)
        patch.expires_at = u.expires_at === null ? null : new Date(u.expires_at).toISOString();
      let later = false;
      if (u.content !== undefined) {
        const embedded = await embedForWrite([u.content]);
        const vector = embedded.vectors[0] ?? null;
        later = embedded.later;
        patch.content = u.content;
        patch.content_hash = contentHash(u.content);
        patch.embedding = vector;
        patch.embedding_model = vector ? (embedder?.model ?? null) : null;
        patch.embed_later = later;
      }
      const target = targetOf(u);
      const memory = await store.update(scope, target, patch, now.toISOString());
      if (!memory) throw notFound('memory', describeTarget(target));
      if (later) config.onQueued?.();
      return memory;
    },

    async forget(scope, input) {
      const f = parseInput(forgetSchema, input);
      await config.maintenance?.assertWritable('forget');
      const hard = f.hard ?? false;
      const now = clock.now().toISOString();
      const target: ForgetTarget =
        f.all === true ? { all: true } : f.filter !== undefined ? { filter: f.filter } : targetOf(f);
      const ids = await store.forget(scope, target, { hard, now });
      if (ids.length === 0 && ('id' in target || 'key' in target)) {
        throw notFound('memory', describeTarget(target));
      }
      const shown = ids.slice(0, MEMORY_LIMITS.forgetIdsShown);
      return { forgotten: ids.length, ids: shown, ids_truncated: shown.length < ids.length, hard };
    },
  };
}
