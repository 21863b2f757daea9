import type { RequestScope } from '../../core/scope.js';
import { checkTenantId } from '../../modules/memory/tier-service.js';
import type { SurfaceContext } from '../brain-services.js';

/** The scope a command acts in: the default tenant's, or `--tenant`'s once checked. */
export function scopeFor(ctx: SurfaceContext, tenant: string | undefined): RequestScope {
  if (tenant === undefined) return ctx.scope;
  checkTenantId(tenant);
  return { ...ctx.scope, tenantId: tenant };
}
