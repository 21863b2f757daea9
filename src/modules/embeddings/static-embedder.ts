import path from 'node:path';
import { findUp } from '../../core/find-up.js';
import type { Logger } from '../../core/logger.js';
import type { Embedder, EmbedderSettings } from './embedder.js';
import { loadStaticTable, type StaticTable, WORD_START } from './static-table.js';

/** Where the table ships: models/use-lite-static at the package root (found from src/, dist/, dist-bench/). */
export const DEFAULT_STATIC_TABLE_DIR =
  findUp(import.meta.url, path.join('models', 'use-lite-static')) ??
  path.resolve('models', 'use-lite-static');

/** Log-probability charged for a character no piece covers (the teacher's tokenizer maps it to `<unk>`). */
const UNKNOWN_CHAR_SCORE = -20;
/** Words segmented so far; bounded so that a stream of unique strings cannot grow the process. */
const SEGMENT_CACHE_LIMIT = 50_000;

export interface StaticEmbedderOptions {
  /** A table directory other than the shipped one (tests, a rebuilt table). */
  tableDir?: string;
}

/**
 * Splits `▁word` into the pieces of highest total log-probability (sentencepiece unigram Viterbi, as
 * the teacher's tokenizer does). Returns the rows of the pieces; characters no piece covers are dropped.
 */
export function segmentWord(table: StaticTable, token: string): number[] {
  const n = token.length;
  const best = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
  const from = new Int32Array(n + 1);
  const rowAt = new Int32Array(n + 1).fill(-1);
  best[0] = 0;
  for (let end = 1; end <= n; end++) {
    for (let start = Math.max(0, end - table.maxPieceLength); start < end; start++) {
      const before = best[start]!;
      if (before === Number.NEGATIVE_INFINITY) continue;
      const row = table.pieceOf.get(token.slice(start, end));
      if (row === undefined) continue;
      const score = before + table.scores[row]!;
      if (score > best[end]!) {
        best[end] = score;
        from[end] = start;
        rowAt[end] = row;
      }
    }
    if (best[end] === Number.NEGATIVE_INFINITY) {
      best[end] = best[end - 1]! + UNKNOWN_CHAR_SCORE;
      from[end] = end - 1;
      rowAt[end] = -1;
    }
  }
  const rows: number[] = [];
  for (let end = n; end > 0; end = from[end]!) if (rowAt[end]! >= 0) rows.push(rowAt[end]!);
  return rows.reverse();
}

/** Text with a character other than printable ASCII and whitespace, which NFKC may change (those it never does). */
const MAY_NORMALIZE = /[^\t\n\r\x20-\x7e]/;

/** Lower-cased words (letters and digits of any script), each as the `▁word` token the table keys. */
function textTokens(text: string): string[] {
  // NFKC costs more than the rest of an embedding; ASCII text is already in that form.
  const normal = MAY_NORMALIZE.test(text) ? text.normalize('NFKC') : text;
  return (normal.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).map((w) => WORD_START + w);
}

/** A token's rows and the factor each is summed with. */
interface TokenRows {
  rows: readonly number[];
  factors: readonly number[];
}

/**
 * How a word the table lacks is embedded: the mean of its pieces' unweighted vectors, weighted as the
 * word (SIF of the product of the pieces' probabilities). Summing the pre-weighted pieces instead would
 * weight a rare word like its common pieces and let them dominate the text.
 */
function segmentedRows(table: StaticTable, token: string): TokenRows {
  const rows = segmentWord(table, token);
  const a = table.header.sif;
  if (a === 0 || rows.length === 0) return { rows, factors: rows.map(() => 1) };
  const sif = (logp: number) => a / (a + Math.exp(logp));
  const wordWeight = sif(rows.reduce((sum, row) => sum + table.scores[row]!, 0));
  return { rows, factors: rows.map((row) => wordWeight / (rows.length * sif(table.scores[row]!))) };
}

/** Builds the embed function over a loaded table: sum of the (pre-weighted) rows, then unit length. */
export function staticEmbedFunction(table: StaticTable): (text: string) => Float32Array {
  const { dimensions } = table.header;
  const cache = new Map<string, TokenRows>();
  const segmented = (token: string): TokenRows => {
    let found = cache.get(token);
    if (found === undefined) {
      if (cache.size >= SEGMENT_CACHE_LIMIT) cache.clear();
      found = segmentedRows(table, token);
      cache.set(token, found);
    }
    return found;
  };
  const sum = new Float64Array(dimensions);
  // Locals, not property reads, in the inner loop: it is the whole cost of an embedding.
  const { vectors, scales, rowOf } = table;
  /** Adds row `row` times `factor` to the sum: four lanes a step (half the time of one), then the rest. */
  const add = (row: number, factor: number): void => {
    const scale = scales[row]! * factor;
    const base = row * dimensions;
    let d = 0;
    for (; d + 4 <= dimensions; d += 4) {
      const at = base + d;
      sum[d]! += scale * vectors[at]!;
      sum[d + 1]! += scale * vectors[at + 1]!;
      sum[d + 2]! += scale * vectors[at + 2]!;
      sum[d + 3]! += scale * vectors[at + 3]!;
    }
    for (; d < dimensions; d++) sum[d]! += scale * vectors[base + d]!;
  };
  return (text) => {
    sum.fill(0);
    for (const token of textTokens(text)) {
      const row = rowOf.get(token);
      if (row !== undefined) {
        add(row, 1);
        continue;
      }
      const { rows, factors } = segmented(token);
      for (let k = 0; k < rows.length; k++) add(rows[k]!, factors[k]!);
    }
    let norm = 0;
    for (let d = 0; d < dimensions; d++) norm += sum[d]! * sum[d]!;
    const vector = new Float32Array(dimensions);
    if (norm > 0) {
      const inverse = 1 / Math.sqrt(norm);
      for (let d = 0; d < dimensions; d++) vector[d] = sum[d]! * inverse;
    }
    return vector;
  };
}

/**
 * The `use-lite-static` embedder: Universal Sentence Encoder Lite distilled into a static table of piece
 * and word vectors (models/use-lite-static, built by scripts/distil-use-lite.mjs). A text costs a few
 * microseconds and needs no model runtime, so writes embed inline. Rejects with a BrainError
 * (UNAVAILABLE) when the table is missing or corrupt.
 */
export async function createStaticEmbedder(
  _settings: EmbedderSettings,
  logger: Logger,
  options: StaticEmbedderOptions = {},
): Promise<Embedder> {
  const tableDir = options.tableDir ?? DEFAULT_STATIC_TABLE_DIR;
  const table = await loadStaticTable(tableDir);
  const { header } = table;
  logger.info(
    { model: header.model, dimensions: header.dimensions, rows: header.rows, tableDir },
    'static embedding table loaded',
  );
  const embedOne = staticEmbedFunction(table);
  return {
    provider: 'use-lite-static',
    model: header.model,
    dimensions: header.dimensions,
    inline: true,
    embed: async (texts) => texts.map(embedOne),
  };
}
