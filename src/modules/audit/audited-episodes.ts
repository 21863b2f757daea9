import type { RequestScope } from '../../core/scope.js';
import type { EpisodeService } from '../episodes/episode-service.js';
import type { AuditLog } from './audit-log.js';
import { auditedCall } from './audited-services.js';

function sessionOf(input: unknown): string | null {
  const id = (input as { session_id?: unknown } | null)?.session_id;
  return typeof id === 'string' ? id : null;
}

/**
 * The episode service with its writes in the audit log, as auditedMemoryService does for memories:
 * `session.record_episode` (target: the episode) and `session.end` (target: the session), with what
 * left the buffer and the memories consolidation made. Content is never kept: an episode is a
 * conversation turn. The memories consolidation writes are audited by the memory service itself.
 */
export function auditedEpisodeService(service: EpisodeService, audit: AuditLog): EpisodeService {
  const audited = <T>(
    scope: RequestScope,
    action: string,
    input: unknown,
    call: () => Promise<T>,
    describe: (result: T) => { target: string | null; details: Record<string, unknown> },
  ) => auditedCall(audit, scope, action, sessionOf(input), call, describe);
  const memories = (c: { memory_id: string }[]) => c.map((x) => x.memory_id);
  return {
    ...service,
    record: (scope, input) =>
      audited(
        scope,
        'session.record_episode',
        input,
        () => service.record(scope, input),
        (r) => ({
          target: r.episode.id,
          details: { session: r.episode.session_id, evicted: r.evicted, memories: memories(r.consolidated) },
        }),
      ),
    end: (scope, input) =>
      audited(
        scope,
        'session.end',
        input,
        () => service.end(scope, input),
        (r) => ({
          target: r.session_id,
          details: { evicted: r.evicted, memories: memories(r.consolidated) },
        }),
      ),
  };
}
