import type { Clock } from '../../core/clock.js';
import { BrainError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { RequestScope } from '../../core/scope.js';
import { parseInput } from '../../core/validation.js';
import type { WriteGate } from '../memory/memory-service.js';
import type { MemoryStore } from '../memory/memory-store.js';
import type { Memory } from '../memory/memory-types.js';
import type { ContextMemory, InitResult } from './session-output.js';
import { initSchema, SESSION_LIMITS } from './session-schemas.js';
import type { SessionStore } from './session-store.js';

export interface SessionService {
  init(scope: RequestScope, input: unknown): Promise<InitResult>;
}

/** Types that init shows first: what the assistant must always keep in mind. */
export const PRIORITY_TYPES = ['system_critical', 'instruction', 'user_preferences', 'preference'];

/** How many candidates of each kind init considers before the budget cuts them. */
const OVERVIEW_CANDIDATES = 50;

function toContext(m: Memory): ContextMemory {
  return {
    id: m.id,
    content: m.content,
    type: m.type,
    tags: m.tags,
    importance: m.importance,
    created_at: m.created_at,
  };
}

/**
 * `init`: opens (or resumes) a session and packs the project's important memories first, then its recent
 * ones, into a character budget. A memory that does not fit is left out whole, never cut mid-text.
 */
export function createSessionService(config: {
  sessions: SessionStore;
  memories: MemoryStore;
  clock: Clock;
  /** While maintenance mode is on, init opens no new session (an existing one still resumes). */
  maintenance?: WriteGate;
}): SessionService {
  const { sessions, memories, clock } = config;
  return {
    async init(scope, input) {
      const q = parseInput(initSchema, input);
      const now = clock.now().toISOString();
      const budget = q.budget_chars ?? SESSION_LIMITS.budgetDefault;
      const project = q.project ?? null;
      // The session is looked up only while maintenance mode is on: resuming one is still allowed.
      await config.maintenance?.assertWritable('opening a new session').catch(async (error) => {
        if (q.session_id === undefined || !(await sessions.get(scope, q.session_id))) throw error;
      });
      const { session, resumed } = await sessions.open(scope, {
        id: q.session_id ?? newId('ses'),
        project,
        client: q.client ?? null,
        now,
      });
      if (resumed && session.project !== project) {
        throw new BrainError(
          'CONFLICT',
          `session_id: session ${session.id} belongs to project ${session.project ?? '(none)'}; call init with that project or without session_id`,
          { issues: [{ field: 'session_id', message: 'belongs to another project' }] },
        );
      }
      const overview = await memories.overview(scope, {
        project,
        limit: OVERVIEW_CANDIDATES,
        priorityTypes: PRIORITY_TYPES,
        now,
      });
      const seen = new Set<string>();
      let used = 0;
      let truncated = false;
      const pack = (list: Memory[]): ContextMemory[] => {
        const out: ContextMemory[] = [];
        for (const m of list) {
          if (seen.has(m.id)) continue;
          if (used + m.content.length > budget) {
            truncated = true;
            continue;
          }
          seen.add(m.id);
          used += m.content.length;
          out.push(toContext(m));
        }
        return out;
      };
      const important = pack(overview.important);
      const recent = pack(overview.recent);
      // More live memories exist than init looked at: the pack is a selection, say so.
      const considered = new Set([...overview.important, ...overview.recent].map((m) => m.id)).size;
      if (overview.total > considered) truncated = true;
      return {
        session_id: session.id,
        resumed,
        project,
        started_at: session.created_at,
        important,
        recent,
        total_memories: overview.total,
        budget_chars: budget,
        used_chars: used,
        truncated,
      };
    },
  };
}
