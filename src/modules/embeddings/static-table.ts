import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { BrainError } from '../../core/errors.js';

/** The sentencepiece word-start marker: `▁cat` is the piece (or word row) that begins a word. */
export const WORD_START = '\u2581';

const StaticTableHeader = z.object({
  format: z.literal('brain-static-embeddings'),
  version: z.literal(1),
  model: z.string().min(1),
  dimensions: z.number().int().positive().max(4096),
  rows: z.number().int().positive(),
  pieces: z.number().int().nonnegative(),
  words: z.number().int().nonnegative(),
  quantization: z.literal('int8-row-scaled'),
  /** SIF's a, baked into the rows (0: unweighted); a word segmented at run time is weighted with it too. */
  sif: z.number().nonnegative(),
  vectors: z.object({ file: z.string().min(1), bytes: z.number().int().positive(), sha256: z.string() }),
  tokens: z.object({ file: z.string().min(1), sha256: z.string() }),
});
export type StaticTableHeader = z.infer<typeof StaticTableHeader>;

/**
 * A distilled static embedding table (see scripts/distil-use-lite.mjs). Row `r` is
 * `scales[r] * vectors[r*dimensions .. (r+1)*dimensions]`, with the token's weight already baked in.
 * Rows `0 .. pieces-1` are sentencepiece pieces (`scores` holds their unigram log-probabilities); the
 * rest are whole words, keyed as `▁word`.
 */
export interface StaticTable {
  header: StaticTableHeader;
  /** Token (`▁word`, `▁piece` or an inner piece such as `ing`) → row. Pieces win over words. */
  rowOf: Map<string, number>;
  /** Inner and word-start pieces only, for segmenting words the table lacks. */
  pieceOf: Map<string, number>;
  scores: Float32Array;
  maxPieceLength: number;
  vectors: Int8Array;
  scales: Float32Array;
}

function corrupt(dir: string, reason: string): BrainError {
  return new BrainError(
    'UNAVAILABLE',
    `The static embedding table at ${dir} is corrupt (${reason}); reinstall the package or rebuild it with ` +
      '`node scripts/distil-use-lite.mjs`.',
    { tableDir: dir, reason },
  );
}

async function readTableFile(dir: string, file: string): Promise<Buffer> {
  try {
    return await readFile(join(dir, file));
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new BrainError(
      'UNAVAILABLE',
      missing
        ? `The static embedding table is missing: ${join(dir, file)} does not exist (it ships in ` +
            'models/use-lite-static/; rebuild it with `node scripts/distil-use-lite.mjs`).'
        : `The static embedding table file ${join(dir, file)} cannot be read: ${(error as Error).message}`,
      { tableDir: dir, file },
      { cause: error },
    );
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function parseHeader(dir: string, raw: Buffer): StaticTableHeader {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw corrupt(dir, 'header.json is not JSON');
  }
  const parsed = StaticTableHeader.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corrupt(dir, `header.json: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`);
  }
  const header = parsed.data;
  if (header.pieces + header.words !== header.rows) throw corrupt(dir, 'pieces + words ≠ rows');
  if (header.vectors.bytes !== header.rows * (header.dimensions + 4))
    throw corrupt(dir, 'vector byte count does not match rows × dimensions');
  return header;
}

/** Reads and checks a table directory (header.json, the tokens and the vectors, verified by sha256). */
export async function loadStaticTable(dir: string): Promise<StaticTable> {
  const header = parseHeader(dir, await readTableFile(dir, 'header.json'));
  const [tokensRaw, vectorsRaw] = await Promise.all([
    readTableFile(dir, header.tokens.file),
    readTableFile(dir, header.vectors.file),
  ]);
  if (vectorsRaw.length !== header.vectors.bytes)
    throw corrupt(dir, `${header.vectors.file} has the wrong size`);
  if (sha256(vectorsRaw) !== header.vectors.sha256)
    throw corrupt(dir, `${header.vectors.file} checksum mismatch`);
  if (sha256(tokensRaw) !== header.tokens.sha256)
    throw corrupt(dir, `${header.tokens.file} checksum mismatch`);

  const lines = tokensRaw.toString('utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length !== header.rows) throw corrupt(dir, `${header.tokens.file} has the wrong number of lines`);
  const rowOf = new Map<string, number>();
  const pieceOf = new Map<string, number>();
  const scores = new Float32Array(header.pieces);
  let maxPieceLength = 1;
  lines.forEach((line, row) => {
    const tab = line.indexOf('\t');
    const token = tab < 0 ? line : line.slice(0, tab);
    if (row < header.pieces) {
      scores[row] = Number(line.slice(tab + 1));
      pieceOf.set(token, row);
      maxPieceLength = Math.max(maxPieceLength, token.length);
    }
    if (!rowOf.has(token)) rowOf.set(token, row);
  });

  // Copies, so that the typed arrays are aligned whatever offset the file buffer had in Node's pool.
  const vectorBytes = header.rows * header.dimensions;
  const vectors = new Int8Array(vectorBytes);
  vectors.set(new Int8Array(vectorsRaw.buffer, vectorsRaw.byteOffset, vectorBytes));
  const scales = new Float32Array(header.rows);
  new Uint8Array(scales.buffer).set(vectorsRaw.subarray(vectorBytes));
  return { header, rowOf, pieceOf, scores, maxPieceLength, vectors, scales };
}
