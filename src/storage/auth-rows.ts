import { BrainError } from '../core/errors.js';
import type { AuditEvent, AuditFilter, AuditOutcome } from '../modules/audit/audit-store.js';
import type { ApiKeyRecord } from '../modules/auth/api-key-store.js';
import { isScope } from '../modules/auth/scopes.js';

/** An `api_keys` row as both engines return it (every column text). */
export interface ApiKeyRow {
  id: string;
  tenant_id: string;
  name: string | null;
  hash: string;
  scopes: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** An `audit_events` row as both engines return it (`details` is JSON text). */
export interface AuditRow {
  id: string;
  at: string;
  principal: string;
  tenant_id: string;
  action: string;
  target: string | null;
  outcome: string;
  details: string;
}

export const API_KEY_COLUMNS =
  'id, tenant_id, name, hash, scopes, created_at, expires_at, revoked_at, last_used_at';
export const AUDIT_COLUMNS = 'id, at, principal, tenant_id, action, target, outcome, details';

/** The row values of a key, in API_KEY_COLUMNS order; scopes as a JSON array text. */
export function apiKeyValues(r: ApiKeyRecord): (string | null)[] {
  return [
    r.id,
    r.tenantId,
    r.name,
    r.hash,
    JSON.stringify(r.scopes),
    r.createdAt,
    r.expiresAt,
    r.revokedAt,
    r.lastUsedAt,
  ];
}

export function apiKeyFromRow(row: ApiKeyRow): ApiKeyRecord {
  // A scope this build does not know (a newer build wrote it) grants nothing here rather than failing.
  const parsed: unknown = JSON.parse(row.scopes);
  const scopes = Array.isArray(parsed) ? parsed.filter(isScope) : [];
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    hash: row.hash,
    scopes,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

/** The conflict a duplicate key insert reports, naming which unique column it met. */
export function apiKeyConflict(field: 'id' | 'hash', id: string, cause: unknown): BrainError {
  return new BrainError(
    'CONFLICT',
    field === 'id' ? `an API key with id ${id} already exists` : 'an API key with this hash already exists',
    { field, id },
    { cause },
  );
}

/** The row values of an event, in AUDIT_COLUMNS order; details as JSON text. */
export function auditValues(e: AuditEvent): (string | null)[] {
  return [e.id, e.at, e.principal, e.tenantId, e.action, e.target, e.outcome, JSON.stringify(e.details)];
}

export function auditFromRow(row: AuditRow): AuditEvent {
  return {
    id: row.id,
    at: row.at,
    principal: row.principal,
    tenantId: row.tenant_id,
    action: row.action,
    target: row.target,
    outcome: row.outcome as AuditOutcome,
    details: JSON.parse(row.details) as Record<string, unknown>,
  };
}

/**
 * The WHERE clause of an audit query and its values, with `placeholder(n)` writing the n-th (1-based)
 * parameter in the engine's style (`?` or `$n`). A prefix action (ending in `.`) is compared with
 * `substr`, not LIKE, so `_` and `%` in an action name are plain characters.
 */
export function auditWhere(
  filter: AuditFilter,
  placeholder: (n: number) => string,
): { where: string; values: unknown[] } {
  const clauses: string[] = [];
  const values: unknown[] = [];
  const push = (clause: string, ...args: unknown[]) => {
    let next = 0;
    clauses.push(
      clause.replace(/\?/g, () => {
        values.push(args[next++]);
        return placeholder(values.length);
      }),
    );
  };
  if (filter.tenantId !== undefined) push('tenant_id = ?', filter.tenantId);
  if (filter.principal !== undefined) push('principal = ?', filter.principal);
  if (filter.action !== undefined) {
    if (filter.action.endsWith('.'))
      push('substr(action, 1, ?) = ?', [...filter.action].length, filter.action);
    else push('action = ?', filter.action);
  }
  if (filter.outcome !== undefined) push('outcome = ?', filter.outcome);
  if (filter.since !== undefined) push('at >= ?', filter.since);
  if (filter.until !== undefined) push('at < ?', filter.until);
  // An unknown cursor id matches nothing (the subquery is NULL): the page after it is empty.
  if (filter.before !== undefined) push('seq < (SELECT seq FROM audit_events WHERE id = ?)', filter.before);
  return { where: clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '', values };
}
