/**
 * `npm run bench -- dedupe`: remember throughput with exact duplicates only (BRAIN_DEDUPE_REWORDED=false:
 * the core write path's lookup), with the default (exact duplicates and rewordings: one more index
 * lookup per unkeyed write), and with near-duplicates on as well (BRAIN_DEDUPE_THRESHOLD=0.95: one vector
 * search per write), in one run, each into a fresh database. The stream repeats 10% of its memories
 * verbatim and 10% as paraphrases, so every merge path runs. Target: the default within 20% of exact only.
 */
import {
  BATCH,
  benchHome,
  collectGarbage,
  openBench,
  PROJECT,
  removeHome,
  yieldToLoop,
} from './bench-brain.js';
import { generateCorpus } from './corpus.js';
import { type Figure, figure, formatTable, latencyFigures, readRss, rssFigures, summarize } from './stats.js';

const SINGLE = 5000;
const BATCHED = 20_000;

/** The write stream: corpus memories, with every tenth repeated and every tenth paraphrased later. */
function stream(count: number): string[] {
  const { memories } = generateCorpus(count, 0, 11);
  return memories.map((m, i) => {
    const earlier = memories[i - 5];
    if (i % 10 === 5 && earlier) return earlier.content;
    if (i % 10 === 7 && earlier) return earlier.paraphrase;
    return m.content;
  });
}

async function run(
  name: string,
  env: Record<string, string>,
  contents: string[],
  batched: string[],
): Promise<{ samples: number[]; ms: number; batchMs: number; merged: number }> {
  const home = benchHome(`dedupe-${name}`);
  const brain = await openBench(home, env);
  try {
    const samples: number[] = [];
    let merged = 0;
    const start = performance.now();
    for (const content of contents) {
      const t = performance.now();
      const r = await brain.services.memory.remember(brain.scope, { content, project: PROJECT });
      samples.push(performance.now() - t);
      if (r.deduplicated) merged++;
      await yieldToLoop();
    }
    const ms = performance.now() - start;
    const batchStart = performance.now();
    for (let i = 0; i < batched.length; i += BATCH) {
      const items = batched.slice(i, i + BATCH).map((content) => ({ content, project: `${PROJECT}-b` }));
      await brain.services.memory.rememberMany(brain.scope, items);
      await yieldToLoop();
    }
    return { samples, ms, batchMs: performance.now() - batchStart, merged };
  } finally {
    await brain.close();
    removeHome(home);
  }
}

export async function printDedupeBench(): Promise<Figure[]> {
  const contents = stream(SINGLE);
  const batched = stream(BATCHED);
  collectGarbage();
  const off = await run('off', { BRAIN_DEDUPE_REWORDED: 'false' }, contents, batched);
  collectGarbage();
  const usual = await run('default', {}, contents, batched);
  collectGarbage();
  const on = await run('on', { BRAIN_DEDUPE_THRESHOLD: '0.95' }, contents, batched);
  const rate = (r: typeof off) => (SINGLE * 1000) / r.ms;
  const batchRate = (r: typeof off) => (BATCHED * 1000) / r.batchMs;
  const figures = [
    ...latencyFigures('single remember, exact dedupe only', summarize(off.samples)),
    figure('single remembers/s, exact only', rate(off), 'ops/s'),
    figure('merged of the stream, exact only', off.merged, 'writes'),
    ...latencyFigures('single remember, exact and rewordings (default)', summarize(usual.samples)),
    figure('single remembers/s, default', rate(usual), 'ops/s'),
    figure('merged of the stream, default', usual.merged, 'writes'),
    figure('single throughput default / exact only', rate(usual) / rate(off), 'ratio', {
      op: '>=',
      value: 0.8,
    }),
    ...latencyFigures('single remember, near-duplicates on (0.95)', summarize(on.samples)),
    figure('single remembers/s, near-duplicates on', rate(on), 'ops/s'),
    figure('merged of the stream, near-duplicates on', on.merged, 'writes'),
    figure('single throughput on / off', rate(on) / rate(off), 'ratio', { op: '>=', value: 0.8 }),
    figure(`batch remembers/s (${BATCH} per call), exact only`, batchRate(off), 'memories/s'),
    figure(`batch remembers/s (${BATCH} per call), default`, batchRate(usual), 'memories/s'),
    figure('batch throughput default / exact only', batchRate(usual) / batchRate(off), 'ratio', {
      op: '>=',
      value: 0.8,
    }),
    figure(`batch remembers/s (${BATCH} per call), near-duplicates on`, batchRate(on), 'memories/s'),
    figure('batch throughput on / off', batchRate(on) / batchRate(off), 'ratio', { op: '>=', value: 0.8 }),
    ...rssFigures('dedupe bench process', readRss()),
  ];
  console.log(
    formatTable(`dedupe: ${SINGLE} single remembers, then ${BATCHED} in batches, per mode`, figures),
  );
  return figures;
}
