import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStorage, type StorageHarness } from '../../../test/services/storage-harness.js';
import { BrainError } from '../../core/errors.js';
import { apiKeyView, createApiKey, generateApiKey, hashApiKey, parseApiKey } from './api-keys.js';

const NOW = new Date('2026-06-01T12:00:00.000Z');

async function invalid(call: Promise<unknown>): Promise<BrainError> {
  const error = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BrainError);
  expect((error as BrainError).code).toBe('INVALID_INPUT');
  return error as BrainError;
}

describe('API key format', () => {
  it('makes keys of the documented shape whose id parses back out', () => {
    const { id, key } = generateApiKey();
    expect(id).toMatch(/^k_[0-9a-hjkmnp-tv-z]{16}$/);
    expect(key).toMatch(new RegExp(`^brain_${id}_[A-Za-z0-9_-]{43}$`));
    expect(parseApiKey(key)).toBe(id);
  });

  it('makes a different key every time', () => {
    const keys = Array.from({ length: 200 }, () => generateApiKey());
    expect(new Set(keys.map((k) => k.id)).size).toBe(200);
    expect(new Set(keys.map((k) => k.key)).size).toBe(200);
  });

  it('hashes with SHA-256 to hex, the same key to the same hash', () => {
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const { key } = generateApiKey();
    expect(hashApiKey(key)).toBe(hashApiKey(key));
    expect(hashApiKey(key)).not.toBe(hashApiKey(`${key}x`));
  });

  it('refuses tokens that are not Brain keys', () => {
    const { id, key } = generateApiKey();
    const secret = key.slice(`brain_${id}_`.length);
    for (const token of [
      '',
      'brain_',
      `${key}x`,
      key.slice(0, -1),
      `Brain_${id}_${secret}`,
      `brain_k_${'I'.repeat(16)}_${secret}`, // I is not in the id alphabet
      `brain_${id}_${secret.slice(0, 42)}!`,
      ` ${key}`,
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig',
    ])
      expect(parseApiKey(token), token).toBeNull();
  });
});

describe('createApiKey', () => {
  let h: StorageHarness;
  beforeEach(async () => {
    h = await openStorage('sqlite');
  });
  afterEach(async () => {
    await h?.close();
  });

  it('stores the hash, never the key, and returns both', async () => {
    const store = h.storage.stores().apiKeys;
    const { key, record } = await createApiKey(
      store,
      { tenantId: 'team-a', scopes: ['read', 'write'], name: 'ci', expiresAt: '2026-07-01T00:00:00+02:00' },
      NOW,
    );
    expect(parseApiKey(key)).toBe(record.id);
    expect(record).toEqual({
      id: record.id,
      tenantId: 'team-a',
      name: 'ci',
      hash: hashApiKey(key),
      scopes: ['read', 'write'],
      createdAt: NOW.toISOString(),
      expiresAt: '2026-06-30T22:00:00.000Z', // normalised to UTC
      revokedAt: null,
      lastUsedAt: null,
    });
    expect(await store.findByHash(hashApiKey(key))).toEqual(record);
    expect(JSON.stringify(await store.list({}))).not.toContain(key);
    expect(apiKeyView(record)).not.toHaveProperty('hash');
  });

  it('names the field and the limit of every bad input, and stores nothing', async () => {
    const store = h.storage.stores().apiKeys;
    const base = { tenantId: 'team-a', scopes: ['read'] as ('read' | 'write')[] };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, tenantId: '' }, /tenantId: must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -/],
      [{ ...base, tenantId: 'a'.repeat(65) }, /tenantId: must be 1 to 64 characters/],
      [{ ...base, tenantId: 'has space' }, /tenantId: must be 1 to 64/],
      [{ ...base, scopes: [] }, /scopes: must name at least one scope of read, write, execute, admin/],
      [{ ...base, scopes: ['read', 'root'] }, /scopes\.1: must be one of read, write, execute, admin/],
      [{ ...base, scopes: ['read', 'read'] }, /scopes: must not repeat a scope/],
      [{ ...base, name: 'n'.repeat(101) }, /name: must be 1 to 100 characters/],
      [{ ...base, name: '' }, /name: must be 1 to 100 characters/],
      [{ ...base, expiresAt: 'tomorrow' }, /expiresAt: must be an ISO 8601 date-time/],
      [{ ...base, expiresAt: '2026-06-01T12:00:00Z' }, /expiresAt: must be in the future/],
      [{ ...base, expiresAt: '2020-01-01T00:00:00Z' }, /expiresAt: must be in the future/],
      [{ ...base, extra: 1 }, /unknown field\(s\): extra/],
    ];
    for (const [input, message] of cases) {
      const error = await invalid(createApiKey(store, input as never, NOW));
      expect(error.message).toMatch(message);
    }
    expect(await store.list({ includeRevoked: true })).toEqual([]);
  });

  it('accepts every scope once and a name of exactly 100 characters', async () => {
    const store = h.storage.stores().apiKeys;
    const { record } = await createApiKey(
      store,
      { tenantId: 'T_9-x', scopes: ['admin', 'execute', 'write', 'read'], name: 'n'.repeat(100) },
      NOW,
    );
    expect(record).toMatchObject({ scopes: ['admin', 'execute', 'write', 'read'], expiresAt: null });
    expect(await store.activeCount(NOW.toISOString())).toBe(1);
  });
});
