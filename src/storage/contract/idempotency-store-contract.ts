import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RequestScope } from '../../core/scope.js';
import type { IdempotencyClaim, IdempotencyStore } from '../../modules/idempotency/idempotency-store.js';

export interface IdempotencyHarness {
  stores: { idempotency: IdempotencyStore };
  close(): Promise<void>;
}

const A: RequestScope = { tenantId: 'tenant-a' };
const B: RequestScope = { tenantId: 'tenant-b' };
const T0 = '2026-06-01T12:00:00.000Z';
const T1 = '2026-06-01T12:00:30.000Z';
const T2 = '2026-06-01T12:02:00.000Z';
const DAY = '2026-06-02T12:00:00.000Z';
const LATER = '2026-06-03T00:00:00.000Z';
const RESPONSE = { status: 201, body: '{"id":"mem_1","status":"created"}', contentType: 'application/json' };

function claimAt(now: string, fingerprint = 'fp-1', key = 'key-1'): IdempotencyClaim {
  return { key, fingerprint, now, leaseUntil: '2026-06-01T12:01:00.000Z', expiresAt: DAY };
}

/**
 * The storage contract of idempotency keys, run unchanged by every driver against a real database.
 * `skip` names why this run cannot test the driver (the suite is then reported skipped with it).
 */
export function runIdempotencyStoreContract(
  driver: string,
  open: () => Promise<IdempotencyHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`IdempotencyStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: IdempotencyHarness;
    let keys: IdempotencyStore;
    beforeEach(async () => {
      h = await open();
      keys = h.stores.idempotency;
    });
    afterEach(async () => {
      await h?.close();
    });

    it('claims a new key, reports it running to a second request, then replays its response', async () => {
      expect(await keys.claim(A, claimAt(T0))).toEqual({ state: 'claimed' });
      expect(await keys.claim(A, claimAt(T1))).toEqual({ state: 'running' });
      await keys.complete(A, 'key-1', 'fp-1', RESPONSE, DAY);
      expect(await keys.claim(A, claimAt(T1))).toEqual({ state: 'done', response: RESPONSE });
      expect(await keys.claim(A, claimAt(T2))).toEqual({ state: 'done', response: RESPONSE });
    });

    it('refuses the key for a different request, and keeps tenants apart', async () => {
      await keys.claim(A, claimAt(T0));
      await keys.complete(A, 'key-1', 'fp-1', RESPONSE, DAY);
      expect(await keys.claim(A, claimAt(T1, 'fp-other'))).toEqual({ state: 'mismatch' });
      // The same key in another tenant is another key.
      expect(await keys.claim(B, claimAt(T1, 'fp-other'))).toEqual({ state: 'claimed' });
      await keys.complete(B, 'key-1', 'fp-other', { ...RESPONSE, status: 200 }, DAY);
      expect(await keys.claim(A, claimAt(T2))).toEqual({ state: 'done', response: RESPONSE });
    });

    it('lets a retry take over a running key whose owner died (its lease ran out), but not before', async () => {
      await keys.claim(A, claimAt(T0));
      expect(await keys.claim(A, claimAt(T1))).toEqual({ state: 'running' });
      expect(await keys.claim(A, claimAt(T2))).toEqual({ state: 'claimed' });
      // The first owner's late completion is for the same request: it is kept.
      await keys.complete(A, 'key-1', 'fp-1', RESPONSE, DAY);
      expect(await keys.claim(A, claimAt(T2))).toEqual({ state: 'done', response: RESPONSE });
    });

    it('lets the next request run after a release, and forgets expired keys', async () => {
      await keys.claim(A, claimAt(T0));
      await keys.release(A, 'key-1', 'fp-1');
      expect(await keys.claim(A, claimAt(T1))).toEqual({ state: 'claimed' });
      await keys.complete(A, 'key-1', 'fp-1', RESPONSE, DAY);
      // Past expires_at the key is free again, even for another request.
      expect(
        await keys.claim(A, { ...claimAt(LATER, 'fp-2'), expiresAt: '2026-06-04T00:00:00.000Z' }),
      ).toEqual({ state: 'claimed' });
      await keys.claim(A, claimAt(T0, 'fp-3', 'key-2'));
      expect(await keys.purgeExpired(LATER)).toBe(1);
      expect(await keys.claim(A, claimAt(LATER, 'fp-9', 'key-2'))).toEqual({ state: 'claimed' });
    });

    it('gives a key to exactly one of many concurrent claims', async () => {
      const results = await Promise.all(Array.from({ length: 12 }, () => keys.claim(A, claimAt(T0))));
      expect(results.filter((r) => r.state === 'claimed')).toHaveLength(1);
      expect(results.filter((r) => r.state === 'running')).toHaveLength(11);
    });
  });
}
