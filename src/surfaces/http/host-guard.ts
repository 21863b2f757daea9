import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { BrainError } from '../../core/errors.js';

/**
 * DNS-rebinding protection. A web page on evil.example can make a browser send requests to a server on
 * 127.0.0.1 by re-pointing its own DNS name there; such requests carry `Host: evil.example` (and an
 * Origin header). A server bound to loopback therefore accepts only loopback host names, and only
 * loopback or explicitly allowed origins.
 */
export interface HostGuardConfig {
  /** The host the server is bound to, e.g. `127.0.0.1`, `localhost`, `::1` or `0.0.0.0`. */
  boundHost: string;
  /** Extra host names accepted in the Host header (port ignored), e.g. `brain.internal`. */
  allowedHosts: string[];
  /** Extra origins accepted in the Origin header, e.g. `https://app.example.com` (exact origin match). */
  allowedOrigins: string[];
}

/** Why a request was rejected, or null when it may pass. */
export type HostGuardVerdict = string | null;

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The host part of a Host header or host name, lower-cased, without port; IPv6 in brackets.
 * Returns null for an empty value.
 */
export function hostPart(value: string): string | null {
  const v = value.trim().toLowerCase();
  if (v === '') return null;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    return end > 0 ? v.slice(0, end + 1) : null;
  }
  // A bare IPv6 address (config values such as `::1`) has several colons and no port to strip.
  if (isIP(v) === 6) return `[${v}]`;
  const colon = v.indexOf(':');
  return colon === -1 ? v : v.slice(0, colon);
}

/** True when `host` names the loopback interface (localhost, 127.0.0.0/8, ::1). */
export function isLoopbackHost(host: string): boolean {
  const h = hostPart(host);
  if (h === null) return false;
  return LOOPBACK_NAMES.has(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The normalised origin (`scheme://host[:port]`) of an Origin header or configured origin, or null. */
function normaliseOrigin(value: string): string | null {
  try {
    const url = new URL(value.trim());
    return url.origin === 'null' ? null : url.origin.toLowerCase();
  } catch {
    return null;
  }
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.host);
  } catch {
    return false;
  }
}

/**
 * Builds the check for one server. Loopback-bound: Host must be a loopback name, the bound host or an
 * allowed host, and an Origin (when present) must be a loopback http(s) origin or an allowed origin.
 * Bound elsewhere: only the configured allow-lists are enforced, each only when non-empty.
 * A request without Origin (curl, SDK clients, other programs) is judged by its Host alone.
 */
export function createHostGuard(
  config: HostGuardConfig,
): (host: string | undefined, origin: string | undefined) => HostGuardVerdict {
  const loopback = isLoopbackHost(config.boundHost);
  const hosts = new Set(config.allowedHosts.map(hostPart).filter((h): h is string => h !== null));
  const origins = new Set(config.allowedOrigins.map(normaliseOrigin).filter((o): o is string => o !== null));
  if (loopback) {
    for (const name of LOOPBACK_NAMES) hosts.add(name);
    const bound = hostPart(config.boundHost);
    if (bound !== null) hosts.add(bound);
  }
  const checkHosts = loopback || hosts.size > 0;
  const checkOrigins = loopback || origins.size > 0;

  return (host, origin) => {
    if (checkHosts) {
      const h = host === undefined ? null : hostPart(host);
      if (h === null || !hosts.has(h)) {
        return `Host header ${JSON.stringify(host ?? '')} is not allowed; add it to the allowed hosts setting if it is yours`;
      }
    }
    if (origin !== undefined && checkOrigins) {
      const o = normaliseOrigin(origin);
      const ok = o !== null && (origins.has(o) || (loopback && isLoopbackOrigin(o)));
      if (!ok) {
        return `Origin ${JSON.stringify(origin)} is not allowed; add it to the allowed origins setting if it is yours`;
      }
    }
    return null;
  };
}

/**
 * A Fastify onRequest hook enforcing {@link createHostGuard} before the body is read. A rejection is
 * thrown as FORBIDDEN, so the one error handler formats it: the REST body, or a JSON-RPC error on /mcp.
 */
export function hostGuardHook(config: HostGuardConfig) {
  const check = createHostGuard(config);
  return async (request: FastifyRequest): Promise<void> => {
    const verdict = check(request.headers.host, headerValue(request.headers.origin));
    if (verdict === null) return;
    request.log.warn(
      { host: request.headers.host, origin: request.headers.origin },
      'host guard rejected a request',
    );
    throw new BrainError('FORBIDDEN', verdict);
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
