import { createHash } from 'node:crypto';

/**
 * The identity of a memory's content for dedupe: 128 bits of SHA-256 of the trimmed text (22 base64url
 * characters) identify content as surely as 256 bits, and keep the dedupe index a third the size of hex.
 * Pure, so that every driver and `brain store copy` compute the same value.
 */
export function contentHash(content: string): string {
  return createHash('sha256').update(content.trim()).digest('base64url').slice(0, 22);
}
