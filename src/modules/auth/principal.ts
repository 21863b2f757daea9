import type { RequestScope } from '../../core/scope.js';
import { SCOPES, type Scope } from './scopes.js';

/** How a caller proved who it is. `local`: no authentication is configured (loopback only). */
export type PrincipalKind = 'local' | 'token' | 'key' | 'jwt' | 'oauth';

/**
 * Who a request acts for: its tenant and what it may do. `id` is stable across requests of one
 * credential, so rate limits, MCP session caps and the audit log key on it: `key:k_…`, `jwt:<sub>`,
 * `oauth:<sub>`, `token`, `local`.
 */
export interface Principal {
  id: string;
  kind: PrincipalKind;
  tenantId: string;
  scopes: ReadonlySet<Scope>;
}

/** The principal of every call while authentication is off: the default tenant, every scope. */
export function localPrincipal(tenantId: string): Principal {
  return { id: 'local', kind: 'local', tenantId, scopes: new Set(SCOPES) };
}

/** The store scope a principal acts in: its tenant, and its id for the audit log. */
export function scopeOf(principal: Principal): RequestScope {
  return { tenantId: principal.tenantId, principal: principal.id };
}
