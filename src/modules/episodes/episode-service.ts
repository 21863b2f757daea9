import type { Clock } from '../../core/clock.js';
import { BrainError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import { parseInput } from '../../core/validation.js';
import type { MemoryService, WriteGate } from '../memory/memory-service.js';
import type { Session, SessionStore } from '../sessions/session-store.js';
import { contentDigest, decideConsolidation, episodeScore, tokens } from './consolidation-rules.js';
import {
  type Consolidation,
  type EndSessionResult,
  type EpisodeHit,
  type EpisodeView,
  type ListEpisodesResult,
  type RecordEpisodeResult,
  recordEpisodeSchema,
  sessionEpisodesSchema,
} from './episode-schemas.js';
import type { Episode, EpisodeStore } from './episode-store.js';

/** What the buffer did, for `brain_episodes_total{event}`. */
export type EpisodeEvent = 'stored' | 'retrieved' | 'consolidated' | 'evicted';

/** Counts of {@link EpisodeEvent} since start. */
export type EpisodeCounts = Record<EpisodeEvent, number>;

export interface EpisodeSettings {
  /** Episodes a session's buffer holds (BRAIN_EPISODE_BUFFER_SIZE). */
  bufferSize: number;
  /** The temporal decay's half-life in minutes (BRAIN_EPISODE_HALF_LIFE_MINUTES). */
  halfLifeMinutes: number;
  /** Explicit importance at or above which an episode is kept (BRAIN_EPISODE_CONSOLIDATE_IMPORTANCE). */
  consolidateImportance: number;
}

export interface EpisodeService {
  /** Appends an episode; the ones it pushes out of the buffer go through consolidation. */
  record(scope: RequestScope, input: unknown): Promise<RecordEpisodeResult>;
  /** The session's buffer, oldest first. */
  list(scope: RequestScope, input: unknown): Promise<ListEpisodesResult>;
  /** Ends the session: its whole buffer goes through consolidation. Calling it again changes nothing. */
  end(scope: RequestScope, input: unknown): Promise<EndSessionResult>;
  /** Buffered episodes matching the query, best (lexical match × temporal decay) first; no error. */
  recent(scope: RequestScope, sessionId: string, query: string, limit: number): Promise<EpisodeHit[]>;
  counts(): EpisodeCounts;
}

/** Episode ids a consolidated memory's metadata lists at most (its rows all link back regardless). */
const LINKED_IDS_SHOWN = 100;

export function toEpisodeView(e: Episode): EpisodeView {
  return {
    id: e.id,
    session_id: e.session_id,
    seq: e.seq,
    role: e.role,
    content: e.content,
    occurred_at: e.occurred_at,
    importance: e.importance,
    metadata: e.metadata,
    state: e.state,
    memory_id: e.memory_id,
    consolidation_reason: e.consolidation_reason,
  };
}

function unknownSession(id: string): BrainError {
  return new BrainError(
    'NOT_FOUND',
    `session_id: no session ${id} in this tenant; call init first and pass its session_id`,
    { issues: [{ field: 'session_id', message: 'no such session' }] },
  );
}

/**
 * The episodic buffer: per session, a bounded ring of recent events. An episode leaving it (pushed out,
 * or the session ending) is reviewed by the deterministic rules of consolidation-rules.ts once; one
 * kept becomes a memory through the memory service's remember (embeddings, dedupe, quotas and tiers
 * apply), unkeyed, so that exact-duplicate dedupe makes repeats, racing replicas, a second review and
 * the same content in another session of the project all land on one memory. The episode rows record
 * it, its metadata lists them.
 */
export function createEpisodeService(config: {
  store: EpisodeStore;
  sessions: SessionStore;
  memory: MemoryService;
  clock: Clock;
  settings: EpisodeSettings;
  logger?: Logger;
  maintenance?: WriteGate;
}): EpisodeService {
  const { store, sessions, memory, clock, settings } = config;
  const counts: EpisodeCounts = { stored: 0, retrieved: 0, consolidated: 0, evicted: 0 };

  async function requireSession(scope: RequestScope, id: string) {
    const session = await sessions.get(scope, id);
    if (!session) throw unknownSession(id);
    return session;
  }

  /**
   * Applies the rules to one episode and its repeats: the consolidation it made (null: none), and the
   * repeats it decided for.
   */
  async function consolidate(
    scope: RequestScope,
    session: Session,
    episode: Episode,
  ): Promise<{ made: Consolidation | null; group: string[] }> {
    const sessionId = session.id;
    const group = await store.repeats(scope, sessionId, episode.digest);
    const decided = group.map((g) => g.id);
    const decision = decideConsolidation(
      { ...episode, occurrences: group.length },
      { importanceThreshold: settings.consolidateImportance },
    );
    if (!decision.keep) return { made: null, group: decided };
    const unlinked = group.filter((g) => g.memory_id === null).map((g) => g.id);
    const linkedTo = group.find((g) => g.memory_id !== null)?.memory_id;
    const memoryId =
      linkedTo ??
      (
        await memory.remember(scope, {
          content: episode.content,
          // No key: an exact duplicate (the same normalised content, unkeyed, in the project) is
          // reinforced, never added twice, and the store's unique index makes that hold for a second
          // review or another replica at the same time. So the same preference said in another session,
          // or already remembered by the assistant, stays one memory, and its episodes link to it.
          type: decision.type,
          tags: ['episode', `episode-${decision.reason}`],
          importance: episode.importance ?? 0.6,
          ...(session.project !== null ? { project: session.project } : {}),
          session: sessionId,
          metadata: {
            episode_ids: group.map((g) => g.id).slice(0, LINKED_IDS_SHOWN),
            consolidation_reason: decision.reason,
          },
        })
      ).id;
    const linked = await store.link(scope, sessionId, unlinked, { id: memoryId, reason: decision.reason });
    counts.consolidated += linked;
    const made = { memory_id: memoryId, reason: decision.reason, episode_ids: unlinked };
    return { made: linked > 0 ? made : null, group: decided };
  }

  /** Reviews episodes that left the buffer; returns the consolidations they led to. */
  async function review(scope: RequestScope, sessionId: string, left: Episode[]): Promise<Consolidation[]> {
    const pending = left.filter((e) => e.memory_id === null);
    if (pending.length === 0) return [];
    const session = await requireSession(scope, sessionId);
    const out: Consolidation[] = [];
    const done = new Set<string>();
    for (const episode of pending) {
      if (done.has(episode.id)) continue;
      try {
        const { made, group } = await consolidate(scope, session, episode);
        if (made) out.push(made);
        for (const id of group) done.add(id);
      } catch (error) {
        // The episode is stored either way: a failed write (quota, maintenance) leaves this one and
        // the rest unreviewed, and the session's end reviews them again.
        config.logger?.warn({ err: error, episode: episode.id }, 'episode consolidation failed');
        break;
      }
    }
    await store.markReviewed(
      scope,
      pending.filter((e) => done.has(e.id)).map((e) => e.id),
    );
    return out;
  }

  return {
    async record(scope, input) {
      const q = parseInput(recordEpisodeSchema, input);
      await config.maintenance?.assertWritable('recording an episode');
      const now = clock.now();
      const result = await store.append(
        scope,
        {
          id: newId('ep', now.getTime()),
          session_id: q.session_id,
          role: q.role,
          content: q.content,
          digest: contentDigest(q.content),
          occurred_at: new Date(q.occurred_at ?? now).toISOString(),
          recorded_at: now.toISOString(),
          importance: q.importance ?? null,
          metadata: q.metadata ?? {},
        },
        settings.bufferSize,
      );
      if (!result) throw unknownSession(q.session_id);
      counts.stored++;
      counts.evicted += result.evicted.length;
      const consolidated = await review(scope, q.session_id, result.evicted);
      return {
        episode: toEpisodeView(result.episode),
        evicted: result.evicted.map((e) => e.id),
        consolidated,
      };
    },

    async list(scope, input) {
      const q = parseInput(sessionEpisodesSchema, input);
      await requireSession(scope, q.session_id);
      const episodes = await store.buffer(scope, q.session_id);
      return {
        session_id: q.session_id,
        buffer_size: settings.bufferSize,
        episodes: episodes.map(toEpisodeView),
      };
    },

    async end(scope, input) {
      const q = parseInput(sessionEpisodesSchema, input);
      await requireSession(scope, q.session_id);
      await config.maintenance?.assertWritable('ending a session');
      const evicted = await store.evictAll(scope, q.session_id);
      counts.evicted += evicted.length;
      // Also the episodes an earlier eviction left unreviewed (its caller stopped before the rules ran).
      const left = await store.unreviewed(scope, q.session_id);
      const consolidated = await review(scope, q.session_id, left);
      return { session_id: q.session_id, evicted: evicted.length, consolidated };
    },

    async recent(scope, sessionId, query, limit) {
      const buffered = await store.buffer(scope, sessionId);
      if (buffered.length === 0 || limit <= 0) return [];
      const now = clock.now().getTime();
      const halfLifeMs = settings.halfLifeMinutes * 60_000;
      const words = tokens(query);
      const hits = buffered
        .map((e) => ({
          id: e.id,
          role: e.role,
          content: e.content,
          occurred_at: e.occurred_at,
          score: episodeScore(words, e.content, now - Date.parse(e.occurred_at), halfLifeMs),
        }))
        .filter((h) => h.score > 0)
        .sort((a, b) => b.score - a.score || b.occurred_at.localeCompare(a.occurred_at))
        .slice(0, limit);
      counts.retrieved += hits.length;
      return hits;
    },

    counts: () => ({ ...counts }),
  };
}
