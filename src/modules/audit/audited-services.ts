import { isBrainError } from '../../core/errors.js';
import type { RequestScope } from '../../core/scope.js';
import type { MemoryService } from '../memory/memory-service.js';
import type { WriteOutcome } from '../memory/memory-store.js';
import { toRememberResult } from '../memory/near-duplicate.js';
import type { AuditLog } from './audit-log.js';
import type { AuditEvent, AuditOutcome } from './audit-store.js';
import { runWithWriteAudit, type WriteAudit } from './write-audit.js';

/**
 * Runs one audited write: records `action` by the scope's principal, `ok` with what `describe` says of
 * the result, or `denied` / `error` with the error code (and `failureTarget`) when it throws, then
 * returns or rethrows. The event is stored before this returns: with `fromOutcomes` (a memory write,
 * whose result follows from its store outcomes) the store may write it in the write's own transaction
 * (WriteAudit), else the audit log stores it after the call (its group commit).
 */
export async function auditedCall<T>(
  audit: AuditLog,
  scope: RequestScope,
  action: string,
  failureTarget: string | null,
  call: () => Promise<T>,
  describe: (result: T) => { target: string | null; details: Record<string, unknown> },
  fromOutcomes?: (outcomes: readonly WriteOutcome[]) => T,
): Promise<T> {
  const event = { principal: scope.principal ?? 'unknown', tenantId: scope.tenantId, action };
  // open: not taken yet; taken: in a transaction not known to have committed; stored: committed with
  // it; closed: the call returned, so a write it started and left running writes no event of it.
  const progress: { state: 'open' | 'taken' | 'stored' | 'closed'; taken: AuditEvent[] } = {
    state: 'open',
    taken: [],
  };
  const inWrite: WriteAudit | null = fromOutcomes
    ? {
        take(writer, outcomes) {
          if (progress.state !== 'open' || writer.tenantId !== scope.tenantId) return [];
          const prepared = audit.prepare({ ...event, outcome: 'ok', ...describe(fromOutcomes(outcomes)) });
          if (prepared === null) return [];
          progress.state = 'taken';
          progress.taken = [prepared];
          return progress.taken;
        },
        committed() {
          if (progress.state === 'taken') progress.state = 'stored';
        },
        release() {
          if (progress.state === 'taken') progress.state = 'open';
        },
      }
    : null;
  let result: T;
  try {
    result = await (inWrite ? runWithWriteAudit(inWrite, call) : call());
  } catch (error) {
    progress.state = 'closed';
    const code = isBrainError(error) ? error.code : 'INTERNAL';
    const outcome: AuditOutcome = code === 'FORBIDDEN' || code === 'QUOTA_EXCEEDED' ? 'denied' : 'error';
    await audit.record({ ...event, target: failureTarget, outcome, details: { code } });
    throw error;
  }
  const stored = progress.state === 'stored';
  progress.state = 'closed';
  if (stored) audit.stored(progress.taken);
  else await audit.record({ ...event, outcome: 'ok', ...describe(result) });
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
    fromOutcomes?: (outcomes: readonly WriteOutcome[]) => T,
  ): Promise<T> => {
    const content = options.includeContent ? contentOf(input) : undefined;
    return auditedCall(
      audit,
      scope,
      action,
      targetOf(input),
      call,
      (result) => {
        const { target, details } = describe(result);
        return { target, details: content === undefined ? details : { ...details, content } };
      },
      fromOutcomes,
    );
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
        // A remember is one insert of one memory: its result is that outcome's.
        (outcomes) => toRememberResult(outcomes[0] as WriteOutcome),
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
        (outcomes) => outcomes.map(toRememberResult),
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
