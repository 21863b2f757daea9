import type { RequestScope } from '../../core/scope.js';

/** Who an episode came from. */
export const EPISODE_ROLES = ['user', 'assistant', 'system', 'tool'] as const;
export type EpisodeRole = (typeof EPISODE_ROLES)[number];

/**
 * Where an episode is: in its session's buffer, out of it (evicted, not kept), or out of it and kept
 * as a long-term memory. A buffered episode may already be linked to a memory (a repeat of one kept).
 */
export type EpisodeState = 'buffered' | 'evicted' | 'consolidated';

/** One event of a session, as stored. */
export interface Episode {
  id: string;
  session_id: string;
  /** Its place in the session: 1, 2, 3, … in the order episodes were recorded. */
  seq: number;
  role: EpisodeRole;
  content: string;
  /** The normalised content's digest (consolidation-rules.ts): repeats share it. */
  digest: string;
  occurred_at: string;
  recorded_at: string;
  importance: number | null;
  metadata: Record<string, unknown>;
  state: EpisodeState;
  /** The memory it was consolidated into, or null. */
  memory_id: string | null;
  consolidation_reason: string | null;
  /** Whether the consolidation rules have looked at it since it left the buffer. */
  reviewed: boolean;
}

/** An episode to append: the store assigns its seq and starts it buffered, unlinked, unreviewed. */
export type NewEpisode = Omit<Episode, 'seq' | 'state' | 'memory_id' | 'consolidation_reason' | 'reviewed'>;

/**
 * The storage port of the episodic buffer; tenant-scoped like every port. Every change that more than
 * one caller could race on is one statement or one transaction in the database (the session's row is
 * locked while an episode is appended), so replicas on one PostgreSQL agree.
 */
export interface EpisodeStore {
  /**
   * Appends an episode at the end of its session and evicts the oldest buffered ones beyond
   * `bufferSize`, in one transaction; returns them (each evicted by this call only). null: no such
   * session in the tenant (nothing written).
   */
  append(
    scope: RequestScope,
    episode: NewEpisode,
    bufferSize: number,
  ): Promise<{ episode: Episode; evicted: Episode[] } | null>;
  /** The session's buffered episodes, oldest first. */
  buffer(scope: RequestScope, sessionId: string): Promise<Episode[]>;
  /** Evicts every buffered episode of the session (the session ends); returns them. */
  evictAll(scope: RequestScope, sessionId: string): Promise<Episode[]>;
  /** Evicted episodes the rules have not reviewed yet (a caller stopped before it did), oldest first. */
  unreviewed(scope: RequestScope, sessionId: string): Promise<Episode[]>;
  /** Every episode of the session with this digest, oldest first. */
  repeats(scope: RequestScope, sessionId: string, digest: string): Promise<Episode[]>;
  /**
   * Links the episodes not linked yet to a memory (an evicted one becomes consolidated); returns how
   * many this call linked, so a racing second call links none.
   */
  link(
    scope: RequestScope,
    sessionId: string,
    ids: string[],
    memory: { id: string; reason: string },
  ): Promise<number>;
  /** Marks evicted episodes as reviewed by the rules. */
  markReviewed(scope: RequestScope, ids: string[]): Promise<void>;
  /** The episodes consolidated into a memory, oldest first (the link back). */
  forMemory(scope: RequestScope, memoryId: string): Promise<Episode[]>;
  /**
   * Sessions of every tenant idle since `before` (neither opened again nor given an episode since) that
   * still hold buffered or unreviewed episodes: the `sessions` job ends them. At most `limit`, oldest first.
   */
  idleSessions(before: string, limit: number): Promise<{ tenantId: string; sessionId: string }[]>;
}
