import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrainError } from '../../core/errors.js';
import type { ApiKeyRecord, ApiKeyStore } from '../../modules/auth/api-key-store.js';

export interface ApiKeyHarness {
  stores: { apiKeys: ApiKeyStore };
  close(): Promise<void>;
}

const T0 = '2026-06-01T12:00:00.000Z';
const T1 = '2026-06-01T13:00:00.000Z';
const T2 = '2026-06-01T14:00:00.000Z';
const T3 = '2026-06-01T15:00:00.000Z';

function key(id: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id,
    tenantId: 'tenant-a',
    name: null,
    hash: `hash-of-${id}`,
    scopes: ['read'],
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    ...over,
  };
}

async function conflictOf(call: Promise<unknown>): Promise<BrainError> {
  const error = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BrainError);
  expect((error as BrainError).code).toBe('CONFLICT');
  return error as BrainError;
}

/** The storage contract of API keys, run unchanged by every driver against a real database. */
export function runApiKeyStoreContract(
  driver: string,
  open: () => Promise<ApiKeyHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`ApiKeyStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: ApiKeyHarness;
    let keys: ApiKeyStore;
    beforeEach(async () => {
      h = await open();
      keys = h.stores.apiKeys;
    });
    afterEach(async () => {
      await h?.close();
    });

    it('stores a key and finds it by hash exactly as stored; an unknown hash is null', async () => {
      const record = key('k_one', { name: 'ci deploy', scopes: ['read', 'write', 'admin'], expiresAt: T3 });
      await keys.insert(record);
      expect(await keys.findByHash('hash-of-k_one')).toEqual(record);
      expect(await keys.findByHash('hash-of-nothing')).toBeNull();
    });

    it('refuses a second key with the same id or the same hash with CONFLICT, naming which', async () => {
      await keys.insert(key('k_one'));
      const byId = await conflictOf(keys.insert(key('k_one', { hash: 'another-hash' })));
      expect(byId.details).toMatchObject({ field: 'id' });
      const byHash = await conflictOf(keys.insert(key('k_two', { hash: 'hash-of-k_one' })));
      expect(byHash.details).toMatchObject({ field: 'hash' });
      // Neither refused insert left anything behind.
      expect((await keys.list({ includeRevoked: true })).map((k) => k.id)).toEqual(['k_one']);
      expect(await keys.findByHash('another-hash')).toBeNull();
    });

    it('returns revoked and expired keys by hash as stored (the caller decides)', async () => {
      await keys.insert(key('k_expired', { expiresAt: T1 }));
      await keys.insert(key('k_revoked'));
      await keys.revoke('k_revoked', T1);
      expect(await keys.findByHash('hash-of-k_expired')).toMatchObject({ id: 'k_expired', expiresAt: T1 });
      expect(await keys.findByHash('hash-of-k_revoked')).toMatchObject({ id: 'k_revoked', revokedAt: T1 });
    });

    it('lists keys oldest first, of one tenant or all, revoked ones only when asked', async () => {
      await keys.insert(key('k_b', { createdAt: T1 }));
      await keys.insert(key('k_a', { createdAt: T0 }));
      await keys.insert(key('k_other', { tenantId: 'tenant-b', createdAt: T2 }));
      await keys.insert(key('k_gone', { createdAt: T3 }));
      await keys.revoke('k_gone', T3);
      const ids = async (filter: Parameters<ApiKeyStore['list']>[0]) =>
        (await keys.list(filter)).map((k) => k.id);
      expect(await ids({})).toEqual(['k_a', 'k_b', 'k_other']);
      expect(await ids({ tenantId: 'tenant-a' })).toEqual(['k_a', 'k_b']);
      expect(await ids({ tenantId: 'tenant-a', includeRevoked: true })).toEqual(['k_a', 'k_b', 'k_gone']);
      expect(await ids({ tenantId: 'tenant-b' })).toEqual(['k_other']);
      expect(await ids({ tenantId: 'nobody', includeRevoked: true })).toEqual([]);
    });

    it('revokes once: a second revoke keeps the first time; an unknown id is null', async () => {
      await keys.insert(key('k_one'));
      expect(await keys.revoke('k_one', T1)).toMatchObject({ id: 'k_one', revokedAt: T1 });
      expect(await keys.revoke('k_one', T2)).toMatchObject({ id: 'k_one', revokedAt: T1 });
      expect(await keys.findByHash('hash-of-k_one')).toMatchObject({ revokedAt: T1 });
      expect(await keys.revoke('k_missing', T2)).toBeNull();
    });

    it('counts the keys neither revoked nor expired at a time', async () => {
      expect(await keys.activeCount(T1)).toBe(0);
      await keys.insert(key('k_forever'));
      await keys.insert(key('k_until_t2', { expiresAt: T2 }));
      await keys.insert(key('k_revoked'));
      await keys.revoke('k_revoked', T0);
      expect(await keys.activeCount(T1)).toBe(2);
      // A key expires at its expiresAt: at that instant it no longer counts.
      expect(await keys.activeCount(T2)).toBe(1);
      expect(await keys.activeCount(T3)).toBe(1);
    });

    it('records when keys were last used, keeping the later time and ignoring unknown ids', async () => {
      await keys.insert(key('k_one'));
      await keys.insert(key('k_two'));
      await keys.insert(key('k_idle'));
      await keys.touch([], T1);
      await keys.touch(['k_one', 'k_two', 'k_missing'], T2);
      await keys.touch(['k_one'], T1); // an older batch flushed late
      const byId = new Map((await keys.list({})).map((k) => [k.id, k.lastUsedAt]));
      expect(Object.fromEntries(byId)).toEqual({ k_one: T2, k_two: T2, k_idle: null });
      await keys.touch(['k_two'], T3);
      expect(await keys.findByHash('hash-of-k_two')).toMatchObject({ lastUsedAt: T3 });
    });
  });
}
