/**
 * `npm run bench -- remember`: single remembers awaited one by one, and rememberMany of 1,000 per call,
 * each into a fresh database. Both yield to the event loop between calls, as a server does between
 * requests, so the WAL checkpointer runs on its timer and not inline in a write.
 */
import {
  BATCH,
  benchHome,
  collectGarbage,
  loadMemories,
  openBench,
  PROJECT,
  removeHome,
  yieldToLoop,
} from './bench-brain.js';
import { type CorpusMemory, generateCorpus } from './corpus.js';
import { type Figure, figure, formatTable, latencyFigures, readRss, rssFigures, summarize } from './stats.js';

export interface RememberBenchOptions {
  /** Single remembers, each awaited. */
  single: number;
  /** Memories written by rememberMany, {@link BATCH} per call. */
  batch: number;
}

/** Each remember awaited alone; returns the per-call latencies and the wall time of the whole run. */
async function singleRemembers(
  memories: readonly CorpusMemory[],
): Promise<{ samples: number[]; ms: number }> {
  const home = benchHome('remember-single');
  const brain = await openBench(home);
  try {
    const samples: number[] = [];
    const start = performance.now();
    for (const m of memories) {
      const t = performance.now();
      await brain.services.memory.remember(brain.scope, { content: m.content, project: PROJECT });
      samples.push(performance.now() - t);
      await yieldToLoop();
    }
    return { samples, ms: performance.now() - start };
  } finally {
    await brain.close();
    removeHome(home);
  }
}

async function batchRemembers(memories: readonly CorpusMemory[]): Promise<{ callMs: number[]; ms: number }> {
  const home = benchHome('remember-batch');
  const brain = await openBench(home);
  try {
    const { callMs, ms } = await loadMemories(brain, memories);
    return { callMs, ms };
  } finally {
    await brain.close();
    removeHome(home);
  }
}

export async function runRememberBench(
  options: RememberBenchOptions = { single: 5000, batch: 100_000 },
): Promise<Figure[]> {
  const corpus = generateCorpus(Math.max(options.single, options.batch), 0, 7);
  collectGarbage();
  const single = await singleRemembers(corpus.memories.slice(0, options.single));
  collectGarbage();
  const batch = await batchRemembers(corpus.memories.slice(0, options.batch));
  return [
    ...latencyFigures('single remember', summarize(single.samples)),
    figure(
      `single remembers per second (wall, ${options.single} awaited)`,
      (options.single * 1000) / single.ms,
      'ops/s',
      {
        op: '>=',
        value: 2000,
      },
    ),
    ...latencyFigures(`rememberMany (${BATCH} per call)`, summarize(batch.callMs)).slice(0, 3),
    figure(`batch remember (wall, ${options.batch} total)`, (options.batch * 1000) / batch.ms, 'memories/s', {
      op: '>=',
      value: 20_000,
    }),
    ...rssFigures('remember bench process (holds the corpus too)', readRss()),
  ];
}

export async function printRememberBench(): Promise<Figure[]> {
  const figures = await runRememberBench();
  console.log(formatTable('remember: in-process, fresh databases', figures));
  return figures;
}
