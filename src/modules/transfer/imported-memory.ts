import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ApiKeyRecord } from '../auth/api-key-store.js';
import { contentSchema, metadataSchema, tagSchema, tagsSchema } from '../memory/memory-schemas.js';
import type { StoredApiKey } from './transfer-records.js';

/**
 * A memory read from another system's file (the MCP memory server, mem0), before it is a stored row:
 * its id is derived from what identifies it there and from its tenant and project, so importing the
 * same file twice finds the ids present and writes nothing, and into another tenant writes it there.
 */
export interface ImportedMemory {
  id: string;
  tenant_id: string;
  project: string | null;
  content: string;
  type: string;
  tags: string[];
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
}

/** Where the memories of a foreign file go: `--tenant` (or the default tenant) and `--project`. */
export interface ImportTarget {
  /** Given with --tenant: every memory goes there. */
  tenant: string | undefined;
  /** BRAIN_DEFAULT_TENANT: where memories go that name no tenant. */
  defaultTenant: string;
  project: string | null;
  /** The import's time: the creation time of memories whose source has none. */
  now: string;
}

/** Crockford base32, lower case, as the ids of src/core/ids.ts. */
const BASE32 = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(bytes: Buffer, chars: number): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
    if (out.length === chars) break;
  }
  return out;
}

/**
 * A memory id (`mem_` + 26 characters) derived from `parts`: with a creation time, its first 10
 * characters are that time as in newId (ids still sort by creation) and 16 come from the hash (80 bits);
 * without one, all 26 come from the hash.
 */
export function derivedMemoryId(parts: readonly string[], createdMs: number | null): string {
  const hash = createHash('sha256').update(parts.join('\u0000')).digest();
  if (createdMs === null) return `mem_${base32(hash, 26)}`;
  let time = '';
  let t = Math.max(0, Math.floor(createdMs));
  for (let i = 0; i < 10; i++) {
    time = BASE32[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return `mem_${time}${base32(hash, 16)}`;
}

/** What a stored key's hash is replaced with on import: no key hashes to it (SHA-256 is 64 hex digits). */
export const IMPORTED_KEY_HASH_PREFIX = 'imported-without-secret:';

/**
 * An imported API key as a record that can never authenticate: an export carries no secret or hash, so
 * the key cannot work here; it is kept, revoked (at `at` unless it was revoked before), so that audit
 * events naming it still say whose key it was, and `brain keys list --all` shows it.
 */
export function disabledKeyRecord(key: StoredApiKey, at: string): ApiKeyRecord {
  return { ...key, hash: `${IMPORTED_KEY_HASH_PREFIX}${key.id}`, revokedAt: key.revokedAt ?? at };
}

const importedFieldsSchema = z.object({
  content: contentSchema,
  tags: tagsSchema,
  metadata: metadataSchema,
});

/**
 * The content, tags and metadata of an imported memory, held to the limits of `remember` (64 KiB of
 * content, 64 tags of 64 characters, 16 KiB of metadata); `fail` names the source's field.
 */
export function checkedFields(
  value: { content: string; tags: string[]; metadata: Record<string, unknown> },
  fail: (field: string, message: string) => never,
  fieldOf: (field: 'content' | 'tags' | 'metadata') => string,
): { content: string; tags: string[]; metadata: Record<string, unknown> } {
  const parsed = importedFieldsSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const [top, ...rest] = issue?.path ?? [];
  const field = [fieldOf((top ?? 'content') as 'content'), ...rest.map(String)].join('.');
  return fail(field, issue?.message ?? 'is not valid');
}

/** `prefix:value` as a tag when it is one (at most 64 characters, no control characters), else null. */
export function tagOf(prefix: string, value: string): string | null {
  const parsed = tagSchema.safeParse(`${prefix}:${value}`);
  return parsed.success ? parsed.data : null;
}
