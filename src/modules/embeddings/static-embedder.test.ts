import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, norm, semanticEmbedderCases } from '../../../test/embedder-cases.js';
import { isBrainError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import type { Embedder, EmbedderSettings } from './embedder.js';
import { createStaticEmbedder, DEFAULT_STATIC_TABLE_DIR, segmentWord } from './static-embedder.js';
import { loadStaticTable, WORD_START } from './static-table.js';

const settings: EmbedderSettings = {
  timeoutMs: 30_000,
  batchSize: 32,
  breakerMaxFailures: 3,
  breakerResetMs: 1_000,
  modelsDir: '/nonexistent',
  allowRemoteModels: false,
};

describe('use-lite-static embedder (the shipped table)', () => {
  let embedder: Embedder;
  beforeAll(async () => {
    embedder = await createStaticEmbedder(settings, silentLogger);
  });

  it('names its vector space after the table and is inline', () => {
    const header = JSON.parse(readFileSync(join(DEFAULT_STATIC_TABLE_DIR, 'header.json'), 'utf8'));
    expect(embedder.provider).toBe('use-lite-static');
    expect(embedder.model).toBe(header.model);
    expect(embedder.model).toMatch(/^use-lite-static-v1-\d+-[0-9a-f]{8}$/);
    expect(embedder.dimensions).toBe(header.dimensions);
    expect(embedder.inline).toBe(true);
  });

  semanticEmbedderCases(() => embedder);

  it('is deterministic, and a batch equals the texts one by one', async () => {
    const texts = ['I went hiking with my dog', 'Tax returns are due in April', 'zorbleflux quandaries'];
    const batch = await embedder.embed(texts);
    const again = await embedder.embed(texts);
    for (const [i, text] of texts.entries()) {
      const [single] = await embedder.embed([text]);
      expect(Array.from(single!)).toEqual(Array.from(batch[i]!));
      expect(Array.from(again[i]!)).toEqual(Array.from(batch[i]!));
    }
  });

  it("is the unit-length sum of its words' rows, each scaled", async () => {
    const table = await loadStaticTable(DEFAULT_STATIC_TABLE_DIR);
    const words = ['walk', 'with', 'my', 'dog'];
    const sum = new Float64Array(table.header.dimensions);
    for (const word of words) {
      const row = table.rowOf.get(`${WORD_START}${word}`);
      expect(row, word).toBeDefined();
      for (let d = 0; d < sum.length; d++)
        sum[d]! += table.scales[row!]! * table.vectors[row! * sum.length + d]!;
    }
    const inverse = 1 / Math.sqrt(sum.reduce((s, v) => s + v * v, 0));
    const [vector] = await embedder.embed([words.join(' ')]);
    expect(Array.from(vector!)).toEqual(Array.from(Float32Array.from(sum, (v) => v * inverse)));
  });

  it('ignores case and punctuation', async () => {
    const [a, b] = await embedder.embed(['Hiking, in the MOUNTAINS!', 'hiking in the mountains']);
    expect(Array.from(a!)).toEqual(Array.from(b!));
  });

  it('gives all-zero vectors for empty, blank and symbol-only texts', async () => {
    const vectors = await embedder.embed(['', ' \n\t ', '?!…']);
    for (const vector of vectors) expect(vector!.every((v) => v === 0)).toBe(true);
    expect(await embedder.embed([])).toEqual([]);
  });

  it('embeds a word outside the table from its pieces, near its relatives', async () => {
    const table = await loadStaticTable(DEFAULT_STATIC_TABLE_DIR);
    expect(table.rowOf.has(`${WORD_START}unhikeable`)).toBe(false);
    expect(segmentWord(table, `${WORD_START}unhikeable`).length).toBeGreaterThan(1);
    const [made, hike, tax] = await embedder.embed(['unhikeable', 'hike', 'taxation']);
    expect(norm(made!)).toBeCloseTo(1, 4);
    expect(cosine(made!, hike!)).toBeGreaterThan(cosine(made!, tax!));
  });
});

describe('use-lite-static table errors', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'brain-static-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const copy = (name: string) => {
    const target = join(dir, name);
    cpSync(DEFAULT_STATIC_TABLE_DIR, target, { recursive: true });
    return target;
  };
  const failure = async (tableDir: string) => {
    const error = await createStaticEmbedder(settings, silentLogger, { tableDir }).catch((e: unknown) => e);
    expect(isBrainError(error) && error.code).toBe('UNAVAILABLE');
    return (error as Error).message;
  };

  it('says where a missing table was looked for', async () => {
    const message = await failure(join(dir, 'absent'));
    expect(message).toContain('missing');
    expect(message).toContain(join(dir, 'absent', 'header.json'));
  });

  it('says a table with a missing vectors file is missing', async () => {
    const table = copy('no-vectors');
    unlinkSync(join(table, 'vectors.bin'));
    expect(await failure(table)).toContain('vectors.bin does not exist');
  });

  it('rejects a damaged vectors file by its checksum', async () => {
    const table = copy('flipped');
    const bytes = readFileSync(join(table, 'vectors.bin'));
    bytes[1000] = (bytes[1000]! + 1) % 256;
    writeFileSync(join(table, 'vectors.bin'), bytes);
    expect(await failure(table)).toMatch(/corrupt.*checksum/);
  });

  it('rejects a truncated vectors file', async () => {
    const table = copy('truncated');
    const bytes = readFileSync(join(table, 'vectors.bin'));
    writeFileSync(join(table, 'vectors.bin'), bytes.subarray(0, bytes.length - 7));
    expect(await failure(table)).toMatch(/corrupt.*wrong size/);
  });

  it('rejects a header that is not JSON or not a table header', async () => {
    const notJson = copy('not-json');
    writeFileSync(join(notJson, 'header.json'), '{"format": ');
    expect(await failure(notJson)).toMatch(/corrupt.*not JSON/);
    const wrong = copy('wrong-header');
    writeFileSync(join(wrong, 'header.json'), JSON.stringify({ format: 'something-else' }));
    expect(await failure(wrong)).toContain('corrupt');
  });
});
