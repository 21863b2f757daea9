import type { RecallResult } from '../memory/memory-output.js';
import type { MemoryService } from '../memory/memory-service.js';
import { EPISODE_LIMITS } from './episode-schemas.js';
import type { EpisodeService } from './episode-service.js';

/**
 * The memory service whose recall, given `in_session` (or a `session`, which also filters the hits to
 * that session's memories), also answers with that session's recent matching episodes (`episodes`, at
 * most min(k, 5)), scored by lexical match × temporal decay. The memory hits are recall's own,
 * unchanged; every other method is the service's.
 */
export function withEpisodeRecall(memory: MemoryService, episodes: EpisodeService): MemoryService {
  return {
    ...memory,
    async recall(scope, input) {
      const result: RecallResult = await memory.recall(scope, input);
      // recall validated the input: a session and a query here are the parsed ones.
      const { session, in_session, query, k } = input as {
        session?: string;
        in_session?: string;
        query: string;
        k?: number;
      };
      const current = in_session ?? session;
      if (current === undefined) return result;
      const limit = Math.min(k ?? 10, EPISODE_LIMITS.recallMax);
      return { ...result, episodes: await episodes.recent(scope, current.trim(), query, limit) };
    },
  };
}
