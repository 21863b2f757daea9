import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { invalidInput } from '../../core/errors.js';
import { isWellFormedText, MALFORMED_TEXT_MESSAGE, parseInput } from '../../core/validation.js';
import { isoDateSchema } from '../memory/memory-schemas.js';
import type { ApiKeyRecord, ApiKeyStore } from './api-key-store.js';
import { SCOPES, type Scope } from './scopes.js';

/** Crockford base32, lower case, as the ids of src/core/ids.ts: no i, l, o or u to misread. */
const BASE32 = '0123456789abcdefghjkmnpqrstvwxyz';
/** Random characters of a key id: 80 bits, so ids never collide in practice. */
const ID_CHARS = 16;
/** Random bytes of a key's secret: 256 bits, 43 characters of base64url. */
const SECRET_BYTES = 32;

/**
 * `brain_<id>_<secret>`: the id (`k_` + 16 base32) is public and names the key in lists and audit
 * events; the secret is 43 base64url characters (which may hold `_` and `-`, so the lengths are fixed).
 */
const KEY_FORMAT = /^brain_(k_[0-9a-hjkmnp-tv-z]{16})_[A-Za-z0-9_-]{43}$/;

export const API_KEY_LIMITS = { nameMax: 100 } as const;

/** A fresh key and its id. The key is shown once and never stored; only {@link hashApiKey} of it is. */
export function generateApiKey(): { id: string; key: string } {
  let id = 'k_';
  // 256 is a multiple of 32: each byte modulo 32 is a uniform base32 character.
  for (const byte of randomBytes(ID_CHARS)) id += BASE32[byte % 32];
  return { id, key: `brain_${id}_${randomBytes(SECRET_BYTES).toString('base64url')}` };
}

/**
 * What the store keeps of a key: SHA-256, hex. A key has 256 random bits, so a fast unsalted hash is
 * enough (nothing to brute-force), and it lets a lookup by hash be one indexed read.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The key id of a token shaped as a Brain API key, or null (a JWT, a static token, garbage). */
export function parseApiKey(token: string): string | null {
  return KEY_FORMAT.exec(token)?.[1] ?? null;
}

/** A key as lists and answers show it: everything but the hash. */
export type ApiKeyView = Omit<ApiKeyRecord, 'hash'>;

export function apiKeyView(record: ApiKeyRecord): ApiKeyView {
  const { hash: _hash, ...view } = record;
  return view;
}

const SCOPE_LIST = SCOPES.join(', ');

/** What `createApiKey` accepts; the tenant follows BRAIN_DEFAULT_TENANT's rule. */
export const createApiKeySchema = z.strictObject({
  tenantId: z
    .string({ error: 'must be a string' })
    .regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -' }),
  scopes: z
    .array(z.enum(SCOPES, { error: `must be one of ${SCOPE_LIST}` }), { error: 'must be an array of scopes' })
    .min(1, { message: `must name at least one scope of ${SCOPE_LIST}` })
    .refine((scopes) => new Set(scopes).size === scopes.length, { message: 'must not repeat a scope' }),
  name: z
    .string({ error: 'must be a string' })
    .min(1, { message: `must be 1 to ${API_KEY_LIMITS.nameMax} characters` })
    .max(API_KEY_LIMITS.nameMax, { message: `must be 1 to ${API_KEY_LIMITS.nameMax} characters` })
    .refine(isWellFormedText, { message: MALFORMED_TEXT_MESSAGE })
    .optional(),
  expiresAt: isoDateSchema.optional(),
});

export type CreateApiKeyInput = z.input<typeof createApiKeySchema>;

/**
 * Validates the input (INVALID_INPUT naming each bad field and its limit), makes a key, stores its
 * record (the hash, never the key) and returns both. The key is in the answer only: print it once.
 */
export async function createApiKey(
  store: ApiKeyStore,
  input: CreateApiKeyInput,
  now: Date,
): Promise<{ key: string; record: ApiKeyRecord }> {
  const parsed = parseInput(createApiKeySchema, input);
  let expiresAt: string | null = null;
  if (parsed.expiresAt !== undefined) {
    const at = Date.parse(parsed.expiresAt);
    // A key that is expired when made would be refused on its first use: say so now instead.
    if (at <= now.getTime())
      throw invalidInput(
        'expiresAt',
        `must be in the future (it is ${parsed.expiresAt}, now is ${now.toISOString()})`,
      );
    // Stored as UTC ISO text: the stores compare expiry times as text.
    expiresAt = new Date(at).toISOString();
  }
  const { id, key } = generateApiKey();
  const record: ApiKeyRecord = {
    id,
    tenantId: parsed.tenantId,
    name: parsed.name ?? null,
    hash: hashApiKey(key),
    scopes: [...parsed.scopes] as Scope[],
    createdAt: now.toISOString(),
    expiresAt,
    revokedAt: null,
    lastUsedAt: null,
  };
  await store.insert(record);
  return { key, record };
}
