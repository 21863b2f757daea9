/**
 * `npm run bench -- remember`: single remembers awaited one by one, and rememberMany of 1,000 per call,
 * each into a fresh database.
 */
import { BATCH, benchHome, loadMemories, openBench, PROJECT, removeHome } from './bench-brain.js';
import { generateCorpus } from './corpus.js';
import { type Figure, figure, formatTable, latencyFigures, readRss, rssFigures, summarize } from './stats.js';

export async function runRememberBench(options = { single: 5000, batch: 100_000 }): Promise<Figure[]> {
  const corpus = generateCorpus(Math.max(options.single, options.batch), 0, 7);
  const singleHome = benchHome('remember-single');
  const single = await openBench(singleHome);
  const samples: number[] = [];
  let singleMs = 0;
  try {
    const start = performance.now();
    for (const m of corpus.memories.slice(0, options.single)) {
      const t = performance.now();
      await single.services.memory.remember(single.scope, { content: m.content, project: PROJECT });
      samples.push(performance.now() - t);
    }
    singleMs = performance.now() - start;
  } finally {
    await single.close();
    removeHome(singleHome);
  }

  const batchHome = benchHome('remember-batch');
  const batch = await openBench(batchHome);
  let batchMs = 0;
  try {
    batchMs = (await loadMemories(batch, corpus.memories.slice(0, options.batch))).ms;
  } finally {
    await batch.close();
    removeHome(batchHome);
  }
  return [
    ...latencyFigures('single remember', summarize(samples)),
    figure('single remembers per second (wall)', (options.single * 1000) / singleMs, 'ops/s', {
      op: '>=',
      value: 2000,
    }),
    figure(
      `batch remember (${BATCH} per call, ${options.batch} total)`,
      (options.batch * 1000) / batchMs,
      'memories/s',
      {
        op: '>=',
        value: 20_000,
      },
    ),
    ...rssFigures('remember process', readRss()),
  ];
}

export async function printRememberBench(): Promise<Figure[]> {
  const figures = await runRememberBench();
  console.log(formatTable('remember: in-process, fresh databases', figures));
  return figures;
}
