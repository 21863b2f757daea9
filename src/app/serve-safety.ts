import type { BrainConfig } from '../config/config-schema.js';
import { isLoopbackHost } from '../surfaces/http/host-guard.js';

/** What `brain serve` decided about its start: refusals (it stops), the host it binds, and what to say. */
export interface ServeSafety {
  refusals: string[];
  host: string;
  warnings: string[];
  /**
   * Authentication stays on for the life of the process, even if every key is revoked: in production and
   * on a non-local address (which both start only with auth on), an open server would serve anyone.
   */
  authAlways: boolean;
}

/** Values that say "replace me": a secret holding one is still at a development value. */
const DEVELOPMENT_VALUE = /CHANGE_IN_PRODUCTION|CHANGE_?ME|(^|[^a-z0-9])dev-/i;

/** The password of a URL with credentials, or undefined. */
function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The start rules of `brain serve`. Authentication is on when a credential source is configured or the
 * store holds an active API key. With it off, the server binds to 127.0.0.1 whatever BRAIN_HOST says.
 * With NODE_ENV=production it refuses to start without authentication, with a secret still at a known
 * development value, or bound to a non-local address without authentication; each refusal says what to
 * change. OAuth needs BRAIN_PUBLIC_URL (the audience of its tokens) in every mode.
 */
export function serveSafety(config: BrainConfig, activeKeys: number): ServeSafety {
  const refusals: string[] = [];
  const warnings: string[] = [];
  const production = config.nodeEnv === 'production';
  const configured = Boolean(config.apiToken || config.jwtSecret || config.jwtJwksUrl || config.oauthIssuer);
  const authOn = configured || activeKeys > 0;
  if (config.oauthIssuer && !config.publicUrl)
    refusals.push(
      "BRAIN_OAUTH_ISSUER is set but BRAIN_PUBLIC_URL is not: set it to Brain's URL as clients reach it (the audience of the issuer's tokens)",
    );
  if (production) {
    if (!authOn)
      refusals.push(
        'NODE_ENV=production needs authentication: create a key with `brain keys create --tenant <t> --scopes read,write`, or set BRAIN_API_TOKEN, BRAIN_JWT_SECRET, BRAIN_JWT_JWKS_URL or BRAIN_OAUTH_ISSUER',
      );
    if (!authOn && !isLoopbackHost(config.host))
      refusals.push(
        `NODE_ENV=production: BRAIN_HOST=${config.host} is not a local address and no authentication is configured; configure authentication (above) or bind 127.0.0.1`,
      );
    const secrets: [string, string | undefined][] = [
      ['BRAIN_API_TOKEN', config.apiToken],
      ['BRAIN_JWT_SECRET', config.jwtSecret],
      ['BRAIN_EMBEDDING_API_KEY', config.embeddingApiKey],
      ['the password of BRAIN_DATABASE_URL', urlPassword(config.databaseUrl)],
      ['the password of BRAIN_DATABASE_READ_URL', urlPassword(config.databaseReadUrl)],
      ['the password of BRAIN_REDIS_URL', urlPassword(config.redisUrl)],
    ];
    for (const [name, value] of secrets)
      if (value && DEVELOPMENT_VALUE.test(value))
        refusals.push(
          `NODE_ENV=production: ${name} is still a development value (it contains CHANGE_IN_PRODUCTION, CHANGEME or dev-); set a real secret`,
        );
    if (config.opaEndpoint && config.opaFailClosed === false)
      warnings.push(
        'BRAIN_OPA_FAIL_CLOSED=false in production: when OPA does not answer, only the built-in check decides',
      );
  }
  let host = config.host;
  if (!authOn && !isLoopbackHost(config.host) && !production) {
    host = '127.0.0.1';
    warnings.push(
      `no authentication is configured: binding 127.0.0.1 instead of BRAIN_HOST=${config.host}; create a key with \`brain keys create\` (or set BRAIN_API_TOKEN) and restart to serve other machines`,
    );
  }
  return { refusals, host, warnings, authAlways: production || !isLoopbackHost(host) };
}
