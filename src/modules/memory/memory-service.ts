import type { Clock } from '../../core/clock.js';
import { invalidInput, notFound } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import { parseInput } from '../../core/validation.js';
import { type Embedder, usableVector } from '../embeddings/embedder.js';
import { VECTOR_POLICIES, type VectorPolicy } from '../search/vector-policy.js';
import { contentHash } from './content-hash.js';
import { DEDUPE_THRESHOLDS } from './dedupe-policy.js';
import {
  coldestTier,
  MemoryOperationHub,
  type MemoryOperationObserver,
  type OperationTier,
} from './memory-operations.js';
import {
  forgetSchema,
  getSchema,
  historySchema,
  listSchema,
  MEMORY_LIMITS,
  type RecallInput,
  type RememberInput,
  recallSchema,
  rememberManySchema,
  rememberSchema,
  updateSchema,
} from './memory-schemas.js';
import type {
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
  HistoryResult,
  ListResult,
  Memory,
  RecallResult,
  RememberResult,
} from './memory-types.js';
import { historyOf, recallCandidatesAsOf } from './memory-versions.js';
import { markNearDuplicates, toRememberResult } from './near-duplicate.js';
import type { QuotaGate } from './quota.js';
import {
  queryVectorKey,
  RECALL_CACHE_TTL_MS,
  RecallCache,
  type RecallCacheStats,
  recallKey,
} from './recall-cache.js';
import { rankHits, withinResponseBudget } from './recall-ranking.js';
import { supersedable } from './supersession.js';

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
  /** Bytes recall's cache of answers and query vectors may hold (BRAIN_CACHE_SIZE_MB); 0 or none: off. */
  cacheBytes?: number;
  /** Near-duplicate similarity (0..1) that merges a write (BRAIN_DEDUPE_THRESHOLD); default per provider. */
  dedupeThreshold?: number;
  /** Whether a rewording of a memory merges into it (BRAIN_DEDUPE_REWORDED); default true. */
  dedupeReworded?: boolean;
}

/**
 * How the memories written since start ended: stored anew, updated under their key, or merged into a
 * memory as an exact duplicate, a rewording or a near-duplicate by similarity.
 */
export interface MemoryWriteStats {
  created: number;
  updated: number;
  exact: number;
  reworded: number;
  similar: number;
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
  /** Every state of a memory, oldest first: those updates and keyed writes replaced, then the current. */
  history(scope: RequestScope, input: unknown): Promise<HistoryResult>;
  /** Lookups of recall's cache (answers and query vectors) since start, and its size now (metrics). */
  cacheStats(): RecallCacheStats;
  /** Memories written since start, by outcome (`brain_memory_writes_total`). */
  writeStats(): MemoryWriteStats;
  /**
   * Tells `observer` of every call that succeeds from now on, with the tier it is counted under
   * (`brain_memory_operations_total`; see OperationTier for the rule of each operation).
   */
  observe(observer: MemoryOperationObserver): void;
}

/**
 * How many candidates each retrieval stage brings to fusion, at least; recall asks each for
 * max(MIN_CANDIDATES, 2k). Measured at 100k memories (npm run bench -- recall), 3k instead of 2k cost
 * ~0.2 ms more per recall (p50 1.80 vs 1.60 ms) for a top-10 hit rate higher by 0.6 points on keyword
 * queries and 1.2 on paraphrases: re-scoring, filtering and reading the extra rows is most of a recall.
 */
const MIN_CANDIDATES = 20;
const CANDIDATES_PER_RESULT = 2;

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
  const dedupeReworded = config.dedupeReworded ?? true;
  const writes: MemoryWriteStats = { created: 0, updated: 0, exact: 0, reworded: 0, similar: 0 };
  /** Near-duplicate merging needs vectors: none without an embedder (exact duplicates still merge). */
  const dedupeThreshold: number | null = embedder
    ? (config.dedupeThreshold ?? DEDUPE_THRESHOLDS[embedder.provider])
    : null;

  /** Answers and query vectors of recent recalls: an assistant often asks the same thing again. */
  const cache = new RecallCache(config.cacheBytes ?? 0);
  const operations = new MemoryOperationHub();

  async function embedQuery(scope: RequestScope, query: string): Promise<Float32Array | null> {
    if (!embedder) return null;
    const key = queryVectorKey(scope.tenantId, embedder.model, query);
    const cached = cache.getVector(key);
    if (cached !== undefined) return cached;
    const [vector] = await embedder.embed([query]);
    const usable = usableVector(vector);
    cache.setVector(key, usable);
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
      valid_from: input.valid_from === undefined ? null : new Date(input.valid_from).toISOString(),
      valid_to: input.valid_to === undefined ? null : new Date(input.valid_to).toISOString(),
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
      supersedes: input.supersedes ?? null,
      // A write that supersedes a memory states something new by intent: merged into a rewording of it
      // (the memory it supersedes, often) it would be lost.
      merge_reworded: dedupeReworded && input.dedupe !== false && !input.supersedes && !input.key,
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
    // Named here with the write's place in the batch; the driver checks again in its transaction.
    const named = new Set<string>();
    for (const [i, input] of inputs.entries()) {
      if (input.supersedes === undefined) continue;
      const old = await store.get(scope, input.supersedes, now.toISOString());
      supersedable(`${fieldPrefix(i)}supersedes`, input.supersedes, old?.superseded_by, old !== null, named);
    }
    if (config.quota) {
      let bytes = 0;
      for (const input of inputs)
        bytes += Buffer.byteLength(input.content) + Buffer.byteLength(JSON.stringify(input.metadata ?? {}));
      await config.quota.assertRoom(scope, { memories: inputs.length, bytes });
    }
    const { vectors, later } = await embedForWrite(inputs.map((i) => i.content));
    const rows = inputs.map((input, i) => toNewMemory(input, vectors[i] ?? null, later, now));
    await markNearDuplicates(store, scope, rows, inputs, dedupeThreshold);
    const results = await store.insert(scope, rows);
    if (later) config.onQueued?.();
    for (const r of results) writes[r.status === 'duplicate' ? (r.deduplicated ?? 'exact') : r.status]++;
    return results.map(toRememberResult);
  }

  /**
   * A recall computed from the store: the answer, whether it may be cached (not when the embedder
   * failed or is unavailable) and until when (ms): RECALL_CACHE_TTL_MS, or sooner when a candidate
   * expires, since its leaving can change the ranks and scores of the others.
   */
  async function computeRecall(
    scope: RequestScope,
    q: RecallInput,
    now: Date,
  ): Promise<{ result: RecallResult; tier: OperationTier; until: number; cacheable: boolean }> {
    const k = q.k ?? 10;
    const limit = Math.max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT);
    const asOf = q.as_of === undefined ? undefined : new Date(q.as_of).toISOString();
    const { embedding, reason, detail } = await recallVector(scope, q.query);
    const filter: MemoryFilter = {
      project: q.project,
      session: q.session,
      types: q.types,
      tags: q.tags,
      since: q.since,
      until: q.until,
      include_cold: q.include_cold,
      as_of: asOf,
    };
    const found = await store.candidates(scope, {
      text: q.query,
      embedding: embedding ?? null,
      embedding_model: embedding ? (embedder?.model ?? null) : null,
      filter,
      limit,
      now: now.toISOString(),
    });
    // as_of: each memory replaced since then reads as it stood then.
    const candidates =
      asOf === undefined
        ? found
        : await recallCandidatesAsOf(store, scope, found, {
            text: q.query,
            filter,
            asOf,
            now: now.toISOString(),
            limit,
          });
    const top = withinResponseBudget(
      // Recency counts back from the time asked about: as_of ranks as the store would have then.
      rankHits(candidates, asOf ? new Date(asOf) : now, embedding ? policy : null, k, q.min_score ?? 0),
    );
    const result: RecallResult = {
      mode: embedding ? 'hybrid' : 'text-only',
      vector_search: candidates.vector_search,
      hits: top,
    };
    if (!embedding && reason) result.reason = reason;
    if (!embedding && detail) result.detail = detail;
    let until = now.getTime() + RECALL_CACHE_TTL_MS;
    for (const memory of candidates.memories.values()) {
      if (memory.expires_at !== null) until = Math.min(until, Date.parse(memory.expires_at));
      // A fact whose validity ends leaves recall then, as an expiring one does (as_of answers never change).
      if (memory.valid_to !== null && asOf === undefined)
        until = Math.min(until, Date.parse(memory.valid_to));
    }
    const cacheable = reason !== 'embedder-failed' && reason !== 'embedder-unavailable';
    const tier = coldestTier(top.map((hit) => candidates.memories.get(hit.id)?.storage_tier));
    return { result, tier, until, cacheable };
  }

  /** The query's vector, or why there is none (no embedder, unavailable, failed, nothing to embed). */
  async function recallVector(
    scope: RequestScope,
    query: string,
  ): Promise<{ embedding: Float32Array | null; reason?: RecallResult['reason']; detail?: string }> {
    const unavailable = embedder?.unavailable?.() ?? config.embedderProblem ?? null;
    if (unavailable !== null) return { embedding: null, reason: 'embedder-unavailable', detail: unavailable };
    if (!embedder) return { embedding: null, reason: 'no-embedder' };
    try {
      const embedding = await embedQuery(scope, query);
      // The embedder ran but found nothing to go on ("!!!", only stopwords): say so, not no-embedder.
      return embedding ? { embedding } : { embedding: null, reason: 'no-query-vector' };
    } catch (error) {
      // The embedder failing must not fail recall: full text still answers, and the result says so.
      logger.warn({ err: error }, 'embedder failed; recall falls back to text-only');
      return { embedding: null, reason: 'embedder-failed' };
    }
  }

  function targetOf(v: { id?: string; key?: string; project?: string }): MemoryTarget {
    return v.id !== undefined ? { id: v.id } : { key: v.key as string, project: v.project ?? null };
  }

  /** BRAIN_QUOTA_BYTES counts an update's growth (content and metadata, as the store's usage counts them). */
  async function assertUpdateFits(
    scope: RequestScope,
    target: MemoryTarget,
    content: string | undefined,
    metadata: Record<string, unknown> | undefined,
    now: string,
  ): Promise<void> {
    const current =
      'id' in target
        ? await store.get(scope, target.id, now)
        : await store.getByKey(scope, target.key, target.project, now);
    if (!current) throw notFound('memory', describeTarget(target));
    const size = (text: string, meta: Record<string, unknown>) =>
      Buffer.byteLength(text) + Buffer.byteLength(JSON.stringify(meta));
    const growth =
      size(content ?? current.content, metadata ?? current.metadata) -
      size(current.content, current.metadata);
    if (growth > 0) await config.quota?.assertRoom(scope, { memories: 0, bytes: growth });
  }

  /**
   * The tier a forget counts under, read before it (only when someone observes): the memory's for one
   * target (`none` for one already forgotten), `all` for a filter or everything (not read per memory).
   */
  async function tierBeforeForget(
    scope: RequestScope,
    target: ForgetTarget,
    now: string,
  ): Promise<OperationTier> {
    if (!operations.observed) return 'all';
    if (!('id' in target || 'key' in target)) return 'all';
    const memory =
      'id' in target
        ? await store.get(scope, target.id, now)
        : await store.getByKey(scope, target.key, target.project, now);
    return memory?.storage_tier ?? 'none';
  }

  function describeTarget(target: MemoryTarget): string {
    return 'id' in target
      ? target.id
      : `key ${target.key}${target.project ? ` in project ${target.project}` : ''}`;
  }

  return {
    cacheStats() {
      return cache.stats();
    },

    writeStats() {
      return { ...writes };
    },

    observe(observer) {
      operations.subscribe(observer);
    },

    async remember(scope, input) {
      const parsed = parseInput(rememberSchema, input);
      await config.maintenance?.assertWritable('remember');
      const [result] = await writeMany(scope, [parsed], () => '');
      operations.report('remember', 'hot');
      return result as RememberResult;
    },

    async rememberMany(scope, input) {
      const parsed = parseInput(rememberManySchema, input);
      await config.maintenance?.assertWritable('remember');
      const results = await writeMany(scope, parsed, (i) => `${i}.`);
      operations.report('remember', 'hot');
      return results;
    },

    async recall(scope, input) {
      const q = parseInput(recallSchema, input);
      const now = clock.now();
      const unavailable = embedder?.unavailable?.() ?? config.embedderProblem ?? null;
      // Answers made while the embedder is down are not kept: the next call may have vectors again.
      const key =
        cache.enabled && unavailable === null
          ? recallKey(scope.tenantId, { ...q, k: q.k ?? 10, min_score: q.min_score ?? 0 })
          : null;
      // Read before the candidates: a write landing meanwhile leaves this answer stale, never served.
      const version = key === null ? null : await store.changeVersion(scope);
      const cached =
        key === null || version === null ? undefined : cache.getResult(key, version, now.getTime());
      const answer = cached ? { ...cached, until: 0, cacheable: false } : await computeRecall(scope, q, now);
      const { result } = answer;
      // A hit is a recall too: its memories' access counts go up as on a miss (a touch never invalidates).
      if (result.hits.length > 0)
        await store.touch(
          scope,
          result.hits.map((h) => h.id),
          now.toISOString(),
        );
      if (key !== null && version !== null && answer.cacheable)
        cache.setResult(key, version, answer.until, result, answer.tier);
      operations.report('recall', answer.tier);
      return result;
    },

    async get(scope, input) {
      const { id } = parseInput(getSchema, input);
      const memory = await store.get(scope, id, clock.now().toISOString());
      if (!memory) throw notFound('memory', id);
      operations.report('get', memory.storage_tier);
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
      operations.report('list', coldestTier(items.map((m) => m.storage_tier)));
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
      if (u.valid_from !== undefined)
        patch.valid_from = u.valid_from === null ? null : new Date(u.valid_from).toISOString();
      if (u.valid_to !== undefined)
        patch.valid_to = u.valid_to === null ? null : new Date(u.valid_to).toISOString();
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
      if (config.quota && (u.content !== undefined || u.metadata !== undefined))
        await assertUpdateFits(scope, target, u.content, u.metadata, now.toISOString());
      const memory = await store.update(scope, target, patch, now.toISOString());
      if (!memory) throw notFound('memory', describeTarget(target));
      if (later) config.onQueued?.();
      operations.report('update', memory.storage_tier);
      return memory;
    },

    async history(scope, input) {
      const { id } = parseInput(historySchema, input);
      const now = clock.now().toISOString();
      const memory = await store.get(scope, id, now);
      const versions = memory ? await store.versions(scope, id, now) : null;
      if (!memory || !versions) throw notFound('memory', id);
      operations.report('history', memory.storage_tier);
      return historyOf(memory, versions);
    },

    async forget(scope, input) {
      const f = parseInput(forgetSchema, input);
      await config.maintenance?.assertWritable('forget');
      const hard = f.hard ?? false;
      const now = clock.now().toISOString();
      const target: ForgetTarget =
        f.all === true ? { all: true } : f.filter !== undefined ? { filter: f.filter } : targetOf(f);
      const tier = await tierBeforeForget(scope, target, now);
      const ids = await store.forget(scope, target, { hard, now });
      if (ids.length === 0 && ('id' in target || 'key' in target)) {
        throw notFound('memory', describeTarget(target));
      }
      operations.report('forget', ids.length === 0 ? 'none' : tier);
      const shown = ids.slice(0, MEMORY_LIMITS.forgetIdsShown);
      return { forgotten: ids.length, ids: shown, ids_truncated: shown.length < ids.length, hard };
    },
  };
}
