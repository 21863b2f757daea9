import type { ExecutionService } from '../execution/execution-service.js';
import type { AuditLog } from './audit-log.js';
import { auditedCall } from './audited-services.js';

function idOf(input: unknown): string | null {
  const id = (input as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : null;
}

function codeBytes(input: unknown): number | null {
  const code = (input as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? Buffer.byteLength(code, 'utf8') : null;
}

/**
 * The execution service with its requests in the audit log: `execution.submit` (principal, code size,
 * files, and the status it answered with) and `execution.cancel`. How each run ended (exit code, CPU
 * time) is audited by the worker that ran it, as `execution.run`. The code itself is never kept.
 */
export function auditedExecutionService(service: ExecutionService, audit: AuditLog): ExecutionService {
  return {
    ...service,
    execute: (scope, input, options) =>
      auditedCall(
        audit,
        scope,
        'execution.submit',
        null,
        () => service.execute(scope, input, options),
        (r) => ({
          target: r.id,
          details: {
            code_bytes: codeBytes(input),
            files: Array.isArray((input as { files?: unknown }).files)
              ? (input as { files: unknown[] }).files.length
              : 0,
            status: r.status,
            exit_code: r.exit_code,
            cpu_time_ms: r.cpu_time_ms,
          },
        }),
      ),
    cancel: (scope, input) =>
      auditedCall(
        audit,
        scope,
        'execution.cancel',
        idOf(input),
        () => service.cancel(scope, input),
        (r) => ({ target: r.id, details: { status: r.status } }),
      ),
  };
}
