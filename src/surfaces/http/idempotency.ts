import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BrainError } from '../../core/errors.js';
import type { IdempotencyStore } from '../../modules/idempotency/idempotency-store.js';
import type { ScopeOf } from './rest-routes.js';

/** The header, as the IETF draft (and Stripe, and the deployment guide's clients) name it. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
const KEY_MAX = 255;
/** Printable ASCII without spaces at the ends: what a client's UUID or random token is. */
const KEY_PATTERN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
/** Statuses a retry may change (busy, rate-limited, unavailable): not kept, the key is released. */
const RETRYABLE = new Set([408, 409, 425, 429]);
const PURGE_EVERY_MS = 10 * 60_000;

export interface IdempotencyOptions {
  store: IdempotencyStore;
  scopeOf: ScopeOf;
  /** How long a key and its response are kept. */
  ttlMs: number;
  /** How long a running request holds its key before a retry may take it over (its server died). */
  leaseMs: number;
  now?: () => Date;
  /** Told of each POST that carries a key, before any other check (the write count waits: see beforeRun). */
  onKey?: (request: FastifyRequest) => void;
  /**
   * Runs once a request has claimed its key, before its handler: the daily write limit is counted here,
   * so that a replay (which writes nothing) neither counts nor is refused by it. A refusal releases the key.
   */
  beforeRun?: (request: FastifyRequest) => Promise<void>;
}

interface Claimed {
  key: string;
  fingerprint: string;
}

const claims = new WeakMap<FastifyRequest, Claimed>();

/** What makes two requests the same request: method, path and query, and the body as parsed. */
function fingerprintOf(request: FastifyRequest): string {
  return createHash('sha256')
    .update(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null)}`)
    .digest('hex');
}

function invalidKey(message: string): BrainError {
  return new BrainError('INVALID_INPUT', `Idempotency-Key header: ${message}`, {
    issues: [{ field: 'Idempotency-Key', message }],
  });
}

/**
 * `Idempotency-Key` on the POST routes of the scope it is registered in: the first request with a key
 * runs and its response (2xx and 4xx but the retryable ones) is kept for `ttlMs`; a retry with the same
 * key and the same request gets that response again (with `Idempotent-Replayed: true`) and writes
 * nothing, on whichever replica it lands, since the keys live in the database. The same key with a
 * different request is a 409; so is a retry while the first is still running (with Retry-After).
 */
export function useIdempotency(app: FastifyInstance, options: IdempotencyOptions): void {
  const now = options.now ?? (() => new Date());
  // Expired keys are deleted every ten minutes while the server runs (by every replica: harmless).
  let purge: NodeJS.Timeout | null = null;
  app.addHook('onReady', async () => {
    purge = setInterval(() => {
      options.store
        .purgeExpired(now().toISOString())
        .catch((error) => app.log.warn({ err: error }, 'could not delete expired Idempotency-Keys'));
    }, PURGE_EVERY_MS);
    purge.unref();
  });
  app.addHook('onClose', async () => {
    if (purge) clearInterval(purge);
  });
  if (options.onKey) {
    const onKey = options.onKey;
    app.addHook('onRequest', async (request: FastifyRequest) => {
      if (request.method === 'POST' && request.headers[IDEMPOTENCY_HEADER] !== undefined) onKey(request);
    });
  }
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== 'POST') return;
    const header = request.headers[IDEMPOTENCY_HEADER];
    if (header === undefined) return;
    if (Array.isArray(header)) throw invalidKey('must be sent once');
    if (header.length > KEY_MAX) throw invalidKey(`must be at most ${KEY_MAX} characters`);
    if (!KEY_PATTERN.test(header)) throw invalidKey('must be printable ASCII (a UUID, for example)');
    const scope = options.scopeOf(request);
    const fingerprint = fingerprintOf(request);
    const at = now();
    const result = await options.store.claim(scope, {
      key: header,
      fingerprint,
      now: at.toISOString(),
      leaseUntil: new Date(at.getTime() + options.leaseMs).toISOString(),
      expiresAt: new Date(at.getTime() + options.ttlMs).toISOString(),
    });
    switch (result.state) {
      case 'claimed':
        claims.set(request, { key: header, fingerprint });
        // A refusal here is answered 429 (retryable): onSend then releases the key.
        await options.beforeRun?.(request);
        return;
      case 'done':
        return reply
          .code(result.response.status)
          .header('content-type', result.response.contentType)
          .header('idempotent-replayed', 'true')
          .send(result.response.body);
      case 'running':
        reply.header('retry-after', '1');
        throw new BrainError(
          'CONFLICT',
          'a request with this Idempotency-Key is still running; retry when it has finished',
          { header: 'Idempotency-Key' },
        );
      case 'mismatch':
        throw new BrainError(
          'CONFLICT',
          'this Idempotency-Key was used for a different request; use a new key for a new request',
          { header: 'Idempotency-Key' },
        );
    }
  });
  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const claim = claims.get(request);
    if (!claim) return payload;
    claims.delete(request);
    const scope = options.scopeOf(request);
    const status = reply.statusCode;
    if (status >= 500 || RETRYABLE.has(status) || typeof payload !== 'string') {
      await options.store
        .release(scope, claim.key, claim.fingerprint)
        .catch((error) => request.log.warn({ err: error }, 'could not release an Idempotency-Key'));
      return payload;
    }
    const contentType = String(reply.getHeader('content-type') ?? 'application/json');
    // The request's own outcome stands even if keeping it fails (the store went away meanwhile): the key
    // stays running until its lease ends, and a retry after that runs again.
    await options.store
      .complete(
        scope,
        claim.key,
        claim.fingerprint,
        { status, body: payload, contentType },
        new Date(now().getTime() + options.ttlMs).toISOString(),
      )
      .catch((error) =>
        request.log.warn({ err: error }, 'could not keep the response of an Idempotency-Key'),
      );
    return payload;
  });
}
