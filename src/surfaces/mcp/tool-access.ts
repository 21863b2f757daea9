import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { RequestScope } from '../../core/scope.js';
import type { Scope } from '../../modules/auth/scopes.js';
import type { SurfaceContext } from '../brain-services.js';

/**
 * The scope one tool call acts in. Over HTTP the call's own credentials decide (the SDK passes the
 * request's `authInfo` to the handler, and {@link SurfaceContext.authorize} checks its scope, policy
 * and write limit); over stdio, with no credentials, it is the context's scope.
 */
export async function toolScope(
  ctx: SurfaceContext,
  extra: { authInfo?: AuthInfo | undefined },
  scope: Scope,
  action: string,
): Promise<RequestScope> {
  if (!ctx.authorize) return ctx.scope;
  return ctx.authorize(extra.authInfo, { scope, action, writes: scope === 'write' ? 1 : 0 });
}
