import type { Scope } from './scopes.js';

/**
 * One API key as stored: never the key itself, only the SHA-256 of it (hex), so a copy of the database
 * gives no working key. Times are ISO 8601 UTC.
 */
export interface ApiKeyRecord {
  /** Public id, shown in lists and audit events, e.g. `k_01J…`; also the key's own prefix. */
  id: string;
  tenantId: string;
  name: string | null;
  hash: string;
  scopes: Scope[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/**
 * The storage port of API keys, shared by every replica: a key revoked on one is refused by all (each
 * replica caches a lookup for at most a second). Lookups by hash span tenants: the key names its tenant.
 */
export interface ApiKeyStore {
  /** Adds a key; CONFLICT when its id or hash exists. */
  insert(record: ApiKeyRecord): Promise<void>;
  /** The key with this hash, revoked or expired ones included (the caller decides), or null. */
  findByHash(hash: string): Promise<ApiKeyRecord | null>;
  /** Keys, oldest first: of one tenant or all; revoked ones only when asked. */
  list(filter: { tenantId?: string; includeRevoked?: boolean }): Promise<ApiKeyRecord[]>;
  /** Marks a key revoked at `at` (a second revoke keeps the first time); null when no key has this id. */
  revoke(id: string, at: string): Promise<ApiKeyRecord | null>;
  /** Keys neither revoked nor expired at `now`: authentication is on while there is one. */
  activeCount(now: string): Promise<number>;
  /** Records when keys were last used (batched by the caller; a missing id is ignored). */
  touch(ids: string[], at: string): Promise<void>;
}
