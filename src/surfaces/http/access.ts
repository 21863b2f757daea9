import { BlockList, isIPv4 } from 'node:net';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BrainError } from '../../core/errors.js';
import type { AuditLog } from '../../modules/audit/audit-log.js';
import type { Authenticator } from '../../modules/auth/authenticator.js';
import type { Policy } from '../../modules/auth/policy.js';
import { type Principal, scopeOf } from '../../modules/auth/principal.js';
import type { RateLimits } from '../../modules/auth/rate-limits.js';
import type { Scope } from '../../modules/auth/scopes.js';
import type { ToolAuthorizer } from '../brain-services.js';

/**
 * What a route needs: `public` (health, docs, OAuth metadata), `authenticated` (a principal, no scope:
 * `/mcp`, whose tools check their own), or a scope and the action it is audited and authorised as,
 * with how many memories it writes (counted against the daily write limit).
 */
export type RouteAccess =
  | 'public'
  | 'authenticated'
  | { scope: Scope; action: string; writes?: (request: FastifyRequest) => number };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** Who the request acts for, set by the access hook (null on public routes). */
    principal: Principal | null;
  }
}

/** Wiring of {@link useAccess}. */
export interface HttpAccess {
  authenticator: Authenticator;
  policy: Policy;
  limits: RateLimits;
  audit?: AuditLog | null;
  /** Addresses and CIDR blocks the `/admin` routes answer; empty: any. */
  adminAllow: string[];
  /** Brain's own URL (BRAIN_PUBLIC_URL); else taken from the request's Host. */
  publicUrl?: string | undefined;
  /** The OAuth authorization server listed in the protected-resource metadata (RFC 9728). */
  oauthIssuer?: string | undefined;
  /** Told of every refused credential, by reason (metrics). */
  onAuthFailure?: (reason: string) => void;
}

/** The RFC 9728 metadata of Brain as an OAuth protected resource. */
export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

function blockListOf(entries: string[]): BlockList | null {
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', bits] = entry.split('/');
    const family = isIPv4(address) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return list;
}

/** An IPv4 address as Node shows it on a dual-stack socket (`::ffff:10.0.0.1`) checked as IPv4. */
function allowed(list: BlockList, ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return list.check(mapped[1], 'ipv4');
  return list.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6');
}

function bearerOf(request: FastifyRequest): string | null | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/** Brain's base URL for the metadata and `WWW-Authenticate`: BRAIN_PUBLIC_URL, or the request's own. */
function baseUrl(access: HttpAccess, request: FastifyRequest): string {
  if (access.publicUrl) return access.publicUrl.replace(/\/+$/, '');
  return `${request.protocol}://${request.host}`;
}

/** The `WWW-Authenticate` challenge of a 401 (RFC 6750), pointing MCP clients at the metadata (RFC 9728). */
function challenge(access: HttpAccess, request: FastifyRequest, error?: string): string {
  const parts = ['Bearer realm="brain"'];
  if (access.oauthIssuer)
    parts.push(`resource_metadata="${baseUrl(access, request)}${RESOURCE_METADATA_PATH}"`);
  if (error) parts.push(`error="${error}"`);
  return parts.join(', ');
}

/** The SDK hands `req.auth` to every tool handler as `extra.authInfo`: the principal rides along. */
export function mcpAuthInfo(principal: Principal, token: string | undefined): AuthInfo {
  return {
    token: token ?? '',
    clientId: principal.id,
    scopes: [...principal.scopes],
    extra: { principal },
  };
}

/** The principal an MCP tool call carries (see {@link mcpAuthInfo}), or null. */
export function principalOf(authInfo: AuthInfo | undefined): Principal | null {
  const principal = authInfo?.extra?.principal as Principal | undefined;
  return principal ?? null;
}

/** `/.well-known/oauth-protected-resource`: where an MCP client learns which server issues tokens. */
export function registerResourceMetadata(app: FastifyInstance, access: HttpAccess): void {
  app.get(
    RESOURCE_METADATA_PATH,
    {
      config: { access: 'public' },
      schema: { tags: ['auth'], summary: 'OAuth 2.0 protected resource metadata (RFC 9728)', security: [] },
    },
    async (request) => ({
      resource: baseUrl(access, request),
      authorization_servers: access.oauthIssuer ? [access.oauthIssuer] : [],
      bearer_methods_supported: ['header'],
      scopes_supported: ['read', 'write', 'execute', 'admin'],
      resource_name: 'Brain',
    }),
  );
}

/**
 * Requests whose writes are counted against the daily limit only once they run: those with an
 * Idempotency-Key, whose replay writes nothing and so must count nothing (nor be refused by the limit).
 */
const deferredWrites = new WeakSet<FastifyRequest>();

/** Leaves the request's write count to {@link countDeferredWrites} (called where the request is known to run). */
export function deferWriteCount(request: FastifyRequest): void {
  deferredWrites.add(request);
}

/** The writes a route says a request makes (its own count, or one for a write-scoped route). */
function routeWrites(
  request: FastifyRequest,
): { route: Exclude<RouteAccess, string>; writes: number } | null {
  const route = request.routeOptions.config?.access;
  if (!route || typeof route === 'string') return null;
  return { route, writes: route.writes?.(request) ?? (route.scope === 'write' ? 1 : 0) };
}

/** Counts a deferred request's writes against its principal's daily limit (RATE_LIMITED past it). */
export async function countDeferredWrites(access: HttpAccess, request: FastifyRequest): Promise<void> {
  const found = routeWrites(request);
  const principal = request.principal;
  if (!found || !principal || !deferredWrites.has(request)) return;
  deferredWrites.delete(request);
  const need = { scope: found.route.scope, action: found.route.action, writes: found.writes };
  await auditDenial(access, principal, need, () => access.limits.writes(principal.id, need.writes));
}

/**
 * The scope check, policy and write limit of one principal's action; a refusal of anything but a read
 * is recorded in the audit log as `denied`.
 */
async function authorizeAction(
  access: HttpAccess,
  principal: Principal,
  need: { scope: Scope; action: string; writes: number },
): Promise<void> {
  await auditDenial(access, principal, need, async () => {
    await access.policy.authorize({
      principal,
      scope: need.scope,
      action: need.action,
      tenantId: principal.tenantId,
    });
    await access.limits.writes(principal.id, need.writes);
  });
}

/** Runs a check of the action; a refusal of anything but a read is recorded as `denied`, then thrown. */
async function auditDenial(
  access: HttpAccess,
  principal: Principal,
  need: { scope: Scope; action: string },
  check: () => Promise<void>,
): Promise<void> {
  try {
    await check();
  } catch (error) {
    if (
      error instanceof BrainError &&
      need.scope !== 'read' &&
      (error.code === 'FORBIDDEN' || error.code === 'RATE_LIMITED')
    )
      void access.audit?.record({
        principal: principal.id,
        tenantId: principal.tenantId,
        action: need.action,
        target: null,
        outcome: 'denied',
        details: { code: error.code, reason: error.message },
      });
    throw error;
  }
}

/** MCP tool calls: the principal of the request that carried the call (see {@link mcpAuthInfo}). */
export function toolAuthorizer(access: HttpAccess): ToolAuthorizer {
  return async (authInfo, need) => {
    const principal = principalOf(authInfo);
    if (!principal)
      throw new BrainError('UNAUTHENTICATED', 'this call carries no credentials', { reason: 'missing' });
    await authorizeAction(access, principal, need);
    return scopeOf(principal);
  };
}

/**
 * Authentication, authorisation and rate limits on every route. `onRequest` (before the body is read):
 * the admin allow-list, the credential (401 with `WWW-Authenticate` when missing or refused, once
 * authentication is on), the principal's request rate (429). `preHandler` (the body parsed): the
 * route's scope and policy (403), and the daily write limit counted by the memories it writes.
 */
export function useAccess(app: FastifyInstance, access: HttpAccess): void {
  const adminList = blockListOf(access.adminAllow);
  app.decorateRequest('principal', null);

  app.addHook('onRoute', (route) => {
    // The docs page's own assets, and the document itself, are public.
    if (route.url.startsWith('/docs') || route.url === '/openapi.json')
      route.config = { ...(route.config ?? {}), access: 'public' };
  });

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.config?.access ?? 'authenticated';
    if (adminList && request.url.startsWith('/admin') && !allowed(adminList, request.ip))
      throw new BrainError('FORBIDDEN', `the admin routes do not answer ${request.ip} (BRAIN_ADMIN_ALLOW)`, {
        address: request.ip,
      });
    if (route === 'public') return;
    const token = bearerOf(request);
    let principal: Principal;
    if (token === undefined && !(await access.authenticator.required())) {
      principal = access.authenticator.local();
    } else {
      try {
        if (token === undefined)
          throw new BrainError(
            'UNAUTHENTICATED',
            'authentication required: send Authorization: Bearer <key or token>',
            {
              reason: 'missing',
            },
          );
        if (token === null)
          throw new BrainError(
            'UNAUTHENTICATED',
            'the Authorization header must be "Bearer <key or token>"',
            {
              reason: 'malformed',
            },
          );
        principal = await access.authenticator.authenticate(token);
      } catch (error) {
        if (error instanceof BrainError && error.code === 'UNAUTHENTICATED') {
          const reason = String(error.details.reason ?? 'invalid');
          access.onAuthFailure?.(reason);
          request.log.warn({ reason }, 'refused a request: credential missing or not valid');
          reply.header(
            'www-authenticate',
            challenge(access, request, reason === 'missing' ? undefined : 'invalid_token'),
          );
        }
        throw error;
      }
    }
    request.principal = principal;
    await access.limits.request(principal.id);
    if (request.url.startsWith('/mcp'))
      (request.raw as { auth?: AuthInfo }).auth = mcpAuthInfo(principal, token ?? undefined);
  });

  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    const found = routeWrites(request);
    if (!found || !request.principal) return;
    const { route } = found;
    const writes = deferredWrites.has(request) ? 0 : found.writes;
    try {
      await authorizeAction(access, request.principal, { scope: route.scope, action: route.action, writes });
    } catch (error) {
      if (error instanceof BrainError && error.code === 'FORBIDDEN' && error.details.required_scope)
        reply.header('www-authenticate', `Bearer error="insufficient_scope", scope="${route.scope}"`);
      throw error;
    }
  });
}
