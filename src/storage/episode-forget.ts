import { filterConditions } from '../modules/memory/memory-filter.js';
import type { ForgetTarget } from '../modules/memory/memory-store.js';

/**
 * The episodes a hard forget purges beyond those consolidated into its memories: every one of the
 * tenant's (forget all), or one session's (a filter whose only condition is that session); null: none
 * more. Episodes hold the words of the conversation, so forgetting it for good takes them too.
 */
export function episodesPurgedWith(target: ForgetTarget): { session: string | null } | null {
  if ('all' in target) return { session: null };
  if (!('filter' in target) || target.filter.session === undefined) return null;
  const conditions = filterConditions(target.filter);
  return conditions.length === 1 && conditions[0] === 'session' ? { session: target.filter.session } : null;
}
