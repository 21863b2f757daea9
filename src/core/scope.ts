/** Who a call acts for. Every store call takes it, and every query filters by its tenant. */
export interface RequestScope {
  tenantId: string;
  /** Who asked (an API key, a JWT subject, `local`, `cli:<user>`), for the audit log; none: unknown. */
  principal?: string;
}

export const DEFAULT_TENANT = 'default';

export const defaultScope: RequestScope = { tenantId: DEFAULT_TENANT };
