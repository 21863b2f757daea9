import { isBrainError } from '../../core/errors.js';
import type { RequestScope } from '../../core/scope.js';
import type { MemoryService } from '../memory/memory-service.js';
import type { AuditLog } from './audit-log.js';
import type { AuditOutcome } from './audit-store.js';

/**
 * Runs one audited write: records `action` by the scope's principal, `ok` with what `describe` says of
 * the result, or `denied` / `error` with the error code (and `failureTarget`) when it throws, then
 * returns or rethrows. The event is stored before this returns (the audit log's group commit).
 */
export async function auditedCall<T>(
  audit: AuditLog,
  scope: RequestScope,
  action: string,
  failureTarget: string | null,
  call: () => Promise<T>,
  describe: (result: T) => { target: string | null; details: Record<string, unknown> },
): Promise<T> {
  const event = { principal: scope.principal ?? 'unknown', tenantId: scope.tenantId, action };
  let result: T;
  try {
    result = await call();
  } catch (error) {
    const code = isBrainError(error) ? error.code : 'INTERNAL';
    const outcome: AuditOutcome = code === 'FORBIDDEN' || code === 'QUOTA_EXCEEDED' ? 'denied' : 'error';
    await audit.record({ ...event, target: failureTarget, outcome, details: { code } });
    throw error;
  }
  await audit.record({ ...event, outcome: 'ok', ...describe(result) });
  return result;
}

/** Ids kept in one batch event: the rest are counted, not listed. */
const IDS_KEPT = 100;

function contentOf(input: unknown): string | undefined {
  const content = (input as { content?: unknown } | null)?.content;
  return typeof content === 'string' ? content : undefined;
}

function targetOf(input: unknown): string | null {
  const v = input as { id?: unknown; key?: unknown } | null;
  if (typeof v?.id === 'string') return v.id;
  if (typeof v?.key === 'string') return `key:${v.key}`;
  return null;
}

/**
 * The memory service with every write recorded in the audit log, whichever face called it (HTTP, MCP,
 * CLI): remember, batches, updates and forgets, with the principal of the scope, the memory ids, and
 * how it ended (`error` with the error code when it failed). A read is not audited. The event is
 * stored before the call returns (the audit log's group commit), so an acknowledged write has its
 * event. Content is kept only with `includeContent` (BRAIN_AUDIT_CONTENT).
 */
export function auditedMemoryService(
  service: MemoryService,
  audit: AuditLog,
  options: { includeContent: boolean },
): MemoryService {
  const audited = <T>(
    scope: RequestScope,
    action: string,
    input: unknown,
    call: () => Promise<T>,
    describe: (result: T) => { target: string | null; details: Record<string, unknown> },
  ): Promise<T> => {
    const content = options.includeContent ? contentOf(input) : undefined;
    return auditedCall(audit, scope, action, targetOf(input), call, (result) => {
      const { target, details } = describe(result);
      return { target, details: content === undefined ? details : { ...details, content } };
    });
  };

  return {
    ...service,
    remember: (scope, input) =>
      audited(
        scope,
        'memory.remember',
        input,
        () => service.remember(scope, input),
        (r) => ({ target: r.id, details: { status: r.status } }),
      ),
    rememberMany: (scope, input) =>
      audited(
        scope,
        'memory.remember_batch',
        input,
        () => service.rememberMany(scope, input),
        (results) => ({
          target: null,
          details: { count: results.length, ids: results.slice(0, IDS_KEPT).map((r) => r.id) },
        }),
      ),
    update: (scope, input) =>
      audited(
        scope,
        'memory.update',
        input,
        () => service.update(scope, input),
        (m) => ({ target: m.id, details: {} }),
      ),
    forget: (scope, input) =>
      audited(
        scope,
        'memory.forget',
        input,
        () => service.forget(scope, input),
        (r) => ({
          target: r.ids.length === 1 ? (r.ids[0] ?? null) : targetOf(input),
          details: { forgotten: r.forgotten, hard: r.hard, ids: r.ids.slice(0, IDS_KEPT) },
        }),
      ),
  };
}
