import os from 'node:os';

/** Every host Brain runs on is little-endian; a big-endian one swaps bytes (exports stay portable). */
const LITTLE_ENDIAN = os.endianness() === 'LE';

/** A vector as the export carries it: its float32 values little-endian, base64. */
export function vectorToBase64(vector: Float32Array): string {
  if (LITTLE_ENDIAN)
    return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
  const out = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) out.writeFloatLE(vector[i] as number, i * 4);
  return out.toString('base64');
}

/**
 * The vector of {@link vectorToBase64}'s text, or a message saying why it is not one of `dimensions`
 * finite floats.
 */
export function vectorFromBase64(text: string, dimensions: number): Float32Array | string {
  const bytes = Buffer.from(text, 'base64');
  // Buffer.from skips characters that are not base64; encoding back tells (a regex cost 5x as much).
  if (bytes.toString('base64') !== text) return 'must be base64 (A-Z a-z 0-9 + /, = padding)';
  if (bytes.length !== dimensions * 4)
    return `must hold ${dimensions} float32 values (${dimensions * 4} bytes), not ${bytes.length} bytes`;
  const out = new Float32Array(dimensions);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
  else for (let i = 0; i < dimensions; i++) out[i] = bytes.readFloatLE(i * 4);
  for (let i = 0; i < dimensions; i++)
    if (!Number.isFinite(out[i])) return `holds a value that is not a finite number (at ${i})`;
  return out;
}
