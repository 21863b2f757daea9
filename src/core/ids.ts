import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** Random bytes drawn from a pooled buffer: one system call per 256 ids instead of one per id. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function randomChunk(size: number): Buffer {
  if (poolOffset + size > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const chunk = pool.subarray(poolOffset, poolOffset + size);
  poolOffset += size;
  return chunk;
}

/**
 * A time-ordered, URL-safe id: 10 chars of milliseconds then 16 random chars (Crockford base32,
 * lower case), with an optional prefix (`mem_…`). Sorting ids sorts by creation time.
 */
export function newId(prefix: string, now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let rand = '';
  for (const b of randomChunk(16)) rand += ALPHABET[b % 32];
  return `${prefix}_${time}${rand}`;
}
