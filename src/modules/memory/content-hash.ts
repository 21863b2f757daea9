import { createHash } from 'node:crypto';

/**
 * The content as dedupe compares it: Unicode NFKC, lower case, every run of whitespace one space, trimmed.
 * "Alice  likes tea." and "alice likes tea." are the same memory; punctuation and digits still count.
 */
export function normaliseContent(content: string): string {
  return content.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

/**
 * The identity of a memory's content for dedupe: 128 bits of SHA-256 of the normalised text (22 base64url
 * characters, see {@link normaliseContent}) identify content as surely as 256 bits, and keep the dedupe
 * index a third the size of hex. Pure, so that every driver and `brain store copy` compute the same value.
 */
export function contentHash(content: string): string {
  return hash(normaliseContent(content));
}

/**
 * The hash rows written before normalisation store (of the trimmed text only). Drivers look a write up by
 * both, so that a repeat of an older memory is still found without rewriting every stored hash; an older
 * memory that differs only by case or spacing is not (near-duplicate detection may still merge it).
 */
export function legacyContentHash(content: string): string {
  return hash(content.trim());
}
