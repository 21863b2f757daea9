/** How an audited action ended: done, refused (auth, scope, policy, limit), or failed. */
export const AUDIT_OUTCOMES = ['ok', 'denied', 'error'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * One audited action: who (principal, tenant), what (action, target), when and how it ended. `details`
 * holds counts, ids and error codes, never a secret, and memory content only with BRAIN_AUDIT_CONTENT.
 */
export interface AuditEvent {
  /** Sortable unique id (time-ordered). */
  id: string;
  /** ISO 8601 UTC. */
  at: string;
  /** e.g. `key:k_01J…`, `jwt:alice`, `token`, `local`, `cli:root`. */
  principal: string;
  tenantId: string;
  /** e.g. `memory.remember`, `memory.forget`, `key.create`, `key.revoke`, `admin.maintenance`. */
  action: string;
  /** What it acted on (a memory id, a key id), or null. */
  target: string | null;
  outcome: AuditOutcome;
  details: Record<string, unknown>;
}

/** A query of the audit log, newest first. Every field but `limit` narrows it. */
export interface AuditFilter {
  tenantId?: string;
  principal?: string;
  /** An exact action, or a prefix ending in `.` (`memory.` matches every memory action). */
  action?: string;
  outcome?: AuditOutcome;
  /** Events at or after this time (ISO 8601 UTC). */
  since?: string;
  /** Events before this time. */
  until?: string;
  /** Events older than the one with this id (paging). */
  before?: string;
  limit: number;
}

/** The storage port of the audit log, on both engines. Append-only but for `purgeBefore`. */
export interface AuditStore {
  /** Appends events in one transaction. */
  append(events: AuditEvent[]): Promise<void>;
  list(filter: AuditFilter): Promise<AuditEvent[]>;
  /** Deletes events before `at`; returns how many. */
  purgeBefore(at: string): Promise<number>;
}
