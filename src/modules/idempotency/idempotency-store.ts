import type { RequestScope } from '../../core/scope.js';

/** A response kept for replay: its status and its body as sent. */
export interface StoredResponse {
  status: number;
  body: string;
  contentType: string;
}

/**
 * What claiming an idempotency key found:
 * - `claimed`: this request owns the key; run it, then `complete` (or `release` it when it failed in a
 *   way a retry may fix);
 * - `done`: a request with the same key and fingerprint already ran; answer with its response;
 * - `running`: one with the same key is still running (on any replica);
 * - `mismatch`: the key was used for a different request.
 */
export type ClaimResult =
  | { state: 'claimed' }
  | { state: 'done'; response: StoredResponse }
  | { state: 'running' }
  | { state: 'mismatch' };

/** One claim: the key, the request's fingerprint, and the times that bound it (ISO 8601 UTC). */
export interface IdempotencyClaim {
  key: string;
  fingerprint: string;
  now: string;
  /** Until when a running claim is its owner's; past it (the owner died) another request may take it. */
  leaseUntil: string;
  /** When the key is forgotten. */
  expiresAt: string;
}

/**
 * The storage port of idempotency keys, shared by every replica (the keys live in the database), and
 * scoped by tenant: two tenants never see each other's keys. Claims are atomic: of concurrent requests
 * with one key, exactly one is `claimed`.
 */
export interface IdempotencyStore {
  claim(scope: RequestScope, claim: IdempotencyClaim): Promise<ClaimResult>;
  /** Keeps the response of a claimed request for replay until `expiresAt`. */
  complete(
    scope: RequestScope,
    key: string,
    fingerprint: string,
    response: StoredResponse,
    expiresAt: string,
  ): Promise<void>;
  /** Gives a claimed key up (the request failed in a way a retry may fix): the next request runs. */
  release(scope: RequestScope, key: string, fingerprint: string): Promise<void>;
  /** Deletes keys expired at `now`; returns how many. */
  purgeExpired(now: string): Promise<number>;
}

/** A kept row's claim result: `done` with its response (a missing content type was JSON). */
export function doneClaim(row: {
  status: number | null;
  body: string | null;
  content_type: string | null;
}): ClaimResult {
  return {
    state: 'done',
    response: {
      status: row.status as number,
      body: row.body ?? '',
      contentType: row.content_type ?? 'application/json',
    },
  };
}
