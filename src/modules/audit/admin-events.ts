import type { AuditRecord } from './audit-log.js';

/**
 * The audit records of the admin actions that both the `/admin` routes and the CLI take, written once so
 * that `brain audit` shows them alike whichever face acted: `principal` is the caller (`cli:<user>` for
 * the CLI), `tenantId` the caller's tenant.
 */
export function maintenanceEvent(
  principal: string,
  tenantId: string,
  change: { on: boolean; reason: string | null },
): AuditRecord {
  return {
    principal,
    tenantId,
    action: 'admin.maintenance',
    target: 'maintenance_mode',
    outcome: 'ok',
    details: { on: change.on, reason: change.reason },
  };
}

/** A rebalance of one tenant (`tenant`) or of every tenant (none), with what it moved. */
export function rebalanceEvent(
  principal: string,
  tenantId: string,
  tenant: string | undefined,
  report: { promoted: number; demoted: number; cooled: number },
): AuditRecord {
  return {
    principal,
    tenantId,
    action: 'admin.rebalance',
    target: tenant ?? '*',
    outcome: 'ok',
    details: { promoted: report.promoted, demoted: report.demoted, cooled: report.cooled },
  };
}
