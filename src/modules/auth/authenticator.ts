import { createHash, timingSafeEqual } from 'node:crypto';
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { Clock } from '../../core/clock.js';
import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ApiKeyRecord, ApiKeyStore } from './api-key-store.js';
import { hashApiKey, parseApiKey } from './api-keys.js';
import { localPrincipal, type Principal } from './principal.js';
import { isScope, type Scope } from './scopes.js';

/** The settings authentication reads (named as in BrainConfig, which satisfies this type). */
export interface AuthSettings {
  apiToken?: string | undefined;
  jwtSecret?: string | undefined;
  jwtJwksUrl?: string | undefined;
  jwtIssuer?: string | undefined;
  jwtAudience?: string | undefined;
  jwtTenantClaim: string;
  oauthIssuer?: string | undefined;
  oauthJwksUrl?: string | undefined;
  publicUrl?: string | undefined;
  defaultTenant: string;
}

/** How long a key lookup (and the count of active keys) is trusted before the store is asked again. */
export const KEY_CACHE_MS = 1000;
const KEY_CACHE_SIZE = 10_000;
/** A key's `last_used_at` is written at most this often. */
const TOUCH_EVERY_MS = 60_000;
const TENANT = /^[A-Za-z0-9_-]{1,64}$/;
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function unauthenticated(message: string, reason: string): BrainError {
  return new BrainError('UNAUTHENTICATED', message, { reason });
}

/** The scopes a token's claims grant: OAuth's space-separated `scope`, or a `scopes` array; `brain:` prefix allowed. */
export function claimScopes(payload: JWTPayload): Scope[] {
  const raw = typeof payload.scope === 'string' ? payload.scope.split(/\s+/) : payload.scopes;
  if (!Array.isArray(raw)) return [];
  const out = new Set<Scope>();
  for (const item of raw) {
    const name = typeof item === 'string' ? item.replace(/^brain:/, '') : item;
    if (isScope(name)) out.add(name);
  }
  return [...out];
}

/** Constant-time equality of two secrets (hashed first, so their lengths leak nothing either). */
function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Where an OAuth authorization server publishes its JWKS: its RFC 8414 (or OpenID) metadata. */
async function discoverJwks(issuer: string): Promise<string> {
  const base = issuer.replace(/\/+$/, '');
  const problems: string[] = [];
  for (const doc of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    try {
      const response = await fetch(`${base}${doc}`, { signal: AbortSignal.timeout(5000) });
      if (!response.ok) {
        problems.push(`${doc}: HTTP ${response.status}`);
        continue;
      }
      const metadata = (await response.json()) as { jwks_uri?: unknown };
      if (typeof metadata.jwks_uri === 'string') return metadata.jwks_uri;
      problems.push(`${doc}: no jwks_uri`);
    } catch (error) {
      problems.push(`${doc}: ${(error as Error).message}`);
    }
  }
  throw new BrainError(
    'UNAVAILABLE',
    `cannot read the JWKS of BRAIN_OAUTH_ISSUER ${issuer} (${problems.join('; ')}); set BRAIN_OAUTH_JWKS_URL`,
    { retry_after_seconds: 5 },
  );
}

/**
 * Turns a bearer credential into a {@link Principal}: the static BRAIN_API_TOKEN, an API key (looked
 * up by hash, cached for {@link KEY_CACHE_MS} so a revocation on any replica holds within a second),
 * a JWT signed with BRAIN_JWT_SECRET or by BRAIN_JWT_JWKS_URL's keys, or an OAuth access token of
 * BRAIN_OAUTH_ISSUER whose audience is Brain's own URL. Every refusal is UNAUTHENTICATED with a reason.
 */
export class Authenticator {
  readonly #settings: AuthSettings;
  readonly #keys: ApiKeyStore;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #keyCache = new Map<string, { record: ApiKeyRecord | null; until: number }>();
  readonly #touched = new Map<string, number>();
  #active: { count: number; until: number; pending?: Promise<number> } = { count: 0, until: 0 };
  /** Auth stays on whatever the keys do (see requireAlways). */
  #always = false;
  #jwtKeys: JWTVerifyGetKey | null = null;
  #oauthKeys: Promise<JWTVerifyGetKey> | null = null;

  constructor(settings: AuthSettings, keys: ApiKeyStore, clock: Clock, logger: Logger) {
    this.#settings = settings;
    this.#keys = keys;
    this.#clock = clock;
    this.#logger = logger;
    if (settings.jwtJwksUrl) this.#jwtKeys = createRemoteJWKSet(new URL(settings.jwtJwksUrl));
  }

  /** Whether a credential source is configured (a key in the store aside). */
  get configured(): boolean {
    const s = this.#settings;
    return Boolean(s.apiToken || s.jwtSecret || s.jwtJwksUrl || s.oauthIssuer);
  }

  /** Whether OAuth is configured: unauthenticated MCP callers are pointed at its metadata. */
  get oauth(): boolean {
    return Boolean(this.#settings.oauthIssuer);
  }

  /**
   * Keeps authentication on even once no key is active: for a server that serves other machines or runs
   * in production, which started with auth on. Revoking (or outliving) the last key then locks every
   * caller out instead of opening the server to all.
   */
  requireAlways(): void {
    this.#always = true;
  }

  /**
   * Whether requests must carry a credential now: a source is configured, auth is held on
   * (requireAlways), or the store holds an active API key (counted at most once a second, so the first
   * `brain keys create` turns auth on at once).
   */
  async required(): Promise<boolean> {
    if (this.configured || this.#always) return true;
    const now = this.#clock.now().getTime();
    if (now < this.#active.until) return this.#active.count > 0;
    this.#active.pending ??= this.#keys
      .activeCount(new Date(now).toISOString())
      .then((count) => {
        this.#active = { count, until: now + KEY_CACHE_MS };
        return count;
      })
      .finally(() => {
        this.#active.pending = undefined;
      });
    return (await this.#active.pending) > 0;
  }

  /** The principal of calls while authentication is off. */
  local(): Principal {
    return localPrincipal(this.#settings.defaultTenant);
  }

  /** The principal of a bearer credential, or UNAUTHENTICATED (UNAVAILABLE when a JWKS cannot be read). */
  async authenticate(token: string): Promise<Principal> {
    const s = this.#settings;
    if (s.apiToken && sameSecret(token, s.apiToken))
      return {
        id: 'token',
        kind: 'token',
        tenantId: s.defaultTenant,
        scopes: new Set(['read', 'write', 'execute', 'admin']),
      };
    if (parseApiKey(token)) return this.#fromKey(token);
    if (token.split('.').length === 3) return this.#fromJwt(token);
    throw unauthenticated('the bearer credential is not a valid Brain API key, token or JWT', 'malformed');
  }

  async #fromKey(token: string): Promise<Principal> {
    const hash = hashApiKey(token);
    const now = this.#clock.now();
    let cached = this.#keyCache.get(hash);
    if (!cached || cached.until <= now.getTime()) {
      const record = await this.#keys.findByHash(hash);
      if (this.#keyCache.size >= KEY_CACHE_SIZE) this.#keyCache.clear();
      cached = { record, until: now.getTime() + KEY_CACHE_MS };
      this.#keyCache.set(hash, cached);
    }
    const record = cached.record;
    if (!record) throw unauthenticated('unknown API key', 'unknown_key');
    if (record.revokedAt) throw unauthenticated(`API key ${record.id} was revoked`, 'revoked');
    if (record.expiresAt && record.expiresAt <= now.toISOString())
      throw unauthenticated(`API key ${record.id} expired at ${record.expiresAt}`, 'expired');
    this.#touch(record.id, now);
    return { id: `key:${record.id}`, kind: 'key', tenantId: record.tenantId, scopes: new Set(record.scopes) };
  }

  /** Writes `last_used_at` at most once a minute per key, off the request's path. */
  #touch(id: string, now: Date): void {
    const last = this.#touched.get(id) ?? 0;
    if (now.getTime() - last < TOUCH_EVERY_MS) return;
    this.#touched.set(id, now.getTime());
    this.#keys.touch([id], now.toISOString()).catch((error: unknown) => {
      this.#logger.warn({ err: error, key: id }, 'could not record when an API key was last used');
    });
  }

  async #fromJwt(token: string): Promise<Principal> {
    const s = this.#settings;
    let alg: string | undefined;
    let issuer: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
      issuer = decodeJwt(token).iss;
    } catch {
      throw unauthenticated('the bearer JWT cannot be decoded', 'malformed');
    }
    const oauth = s.oauthIssuer !== undefined && issuer === s.oauthIssuer;
    let payload: JWTPayload;
    try {
      if (oauth) {
        const audience = [s.publicUrl ?? '', `${(s.publicUrl ?? '').replace(/\/+$/, '')}/mcp`];
        ({ payload } = await jwtVerify(token, await this.#oauthJwks(), {
          issuer: s.oauthIssuer,
          audience,
          algorithms: ASYMMETRIC,
        }));
      } else if (alg === 'HS256' && s.jwtSecret) {
        ({ payload } = await jwtVerify(token, new TextEncoder().encode(s.jwtSecret), {
          algorithms: ['HS256'],
          ...(s.jwtIssuer ? { issuer: s.jwtIssuer } : {}),
          ...(s.jwtAudience ? { audience: s.jwtAudience } : {}),
        }));
      } else if (this.#jwtKeys && alg !== 'HS256') {
        ({ payload } = await jwtVerify(token, this.#jwtKeys, {
          algorithms: ASYMMETRIC,
          ...(s.jwtIssuer ? { issuer: s.jwtIssuer } : {}),
          ...(s.jwtAudience ? { audience: s.jwtAudience } : {}),
        }));
      } else {
        throw unauthenticated(
          `JWTs signed with ${alg ?? 'no algorithm'} are not accepted here`,
          'bad_algorithm',
        );
      }
    } catch (error) {
      throw this.#jwtError(error);
    }
    return this.#fromClaims(payload, oauth ? 'oauth' : 'jwt');
  }

  #fromClaims(payload: JWTPayload, kind: 'jwt' | 'oauth'): Principal {
    if (typeof payload.sub !== 'string' || payload.sub === '')
      throw unauthenticated('the JWT has no subject (sub claim)', 'no_subject');
    if (payload.exp === undefined) throw unauthenticated('the JWT has no expiry (exp claim)', 'no_expiry');
    const claim = payload[this.#settings.jwtTenantClaim];
    const tenantId = claim === undefined ? this.#settings.defaultTenant : claim;
    if (typeof tenantId !== 'string' || !TENANT.test(tenantId))
      throw unauthenticated(
        `the JWT's ${this.#settings.jwtTenantClaim} claim must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -`,
        'bad_tenant',
      );
    return { id: `${kind}:${payload.sub}`, kind, tenantId, scopes: new Set(claimScopes(payload)) };
  }

  #jwtError(error: unknown): BrainError {
    if (error instanceof BrainError) return error;
    if (error instanceof joseErrors.JWTExpired) return unauthenticated('the JWT has expired', 'expired');
    if (error instanceof joseErrors.JWTClaimValidationFailed)
      return unauthenticated(
        `the JWT's ${error.claim} claim is not accepted: ${error.reason}`,
        `bad_${error.claim}`,
      );
    if (error instanceof joseErrors.JWKSTimeout || !(error instanceof joseErrors.JOSEError)) {
      this.#logger.warn({ err: error }, 'could not verify a JWT');
      return new BrainError('UNAVAILABLE', 'the keys that sign tokens cannot be read now; retry shortly', {
        retry_after_seconds: 5,
      });
    }
    return unauthenticated('the JWT signature or format is not valid', 'bad_signature');
  }

  #oauthJwks(): Promise<JWTVerifyGetKey> {
    const s = this.#settings;
    this.#oauthKeys ??= (s.oauthJwksUrl ? Promise.resolve(s.oauthJwksUrl) : discoverJwks(s.oauthIssuer ?? ''))
      .then((url) => createRemoteJWKSet(new URL(url)))
      .catch((error: unknown) => {
        this.#oauthKeys = null; // try the metadata again on the next token
        throw error;
      });
    return this.#oauthKeys;
  }
}
