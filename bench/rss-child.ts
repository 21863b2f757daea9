/**
 * A fresh process for `npm run bench -- rss`: `load <home> <count>` fills a database; `serve <home>`
 * opens it, gets its vector index ready (built from the rows, or loaded from the copy a previous serve
 * saved at close), runs 1,000 recalls, and prints its peak RSS (VmHWM), the time from open to a ready
 * index, whether the index was loaded, and the recall latencies as JSON.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadMemories, openBench, PROJECT, warmVectors, yieldToLoop } from './bench-brain.js';
import { type CorpusMemory, createRandom, generateMemory } from './corpus.js';
import { readRss, summarize } from './stats.js';

const [mode, home, countText] = process.argv.slice(2);
if (!home || (mode !== 'load' && mode !== 'serve')) {
  console.error('usage: rss-child load|serve <home> [count]');
  process.exit(2);
}
const opened = performance.now();
const brain = await openBench(home);
/** Loads the same memories and picks the same queries as generateCorpus(count, queries, seed), streamed. */
async function streamCorpus(
  target: typeof brain,
  count: number,
  queryCount: number,
  seed: number,
): Promise<string[]> {
  const qrand = createRandom(seed + 1);
  const wanted = new Map<number, number[]>();
  for (let q = 0; q < queryCount; q++) {
    const at = Math.floor(qrand() * count);
    wanted.set(at, [...(wanted.get(at) ?? []), q]);
  }
  const texts: string[] = new Array(queryCount);
  const rand = createRandom(seed);
  for (let start = 0; start < count; start += 1000) {
    const batch: CorpusMemory[] = [];
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const memory = generateMemory(rand, i);
      for (const q of wanted.get(i) ?? []) texts[q] = q % 2 === 0 ? memory.keywords : memory.paraphrase;
      batch.push(memory);
    }
    await loadMemories(target, batch);
  }
  return texts;
}

const queryFile = path.join(home, 'queries.json');
const timings = { warmMs: 0, recallMs: [] as number[], loaded: false };
if (mode === 'load') {
  // Memories are generated a batch at a time, so that this process's peak is Brain's, not the corpus's.
  const queries = await streamCorpus(brain, Number(countText ?? 100_000), 1000, 42);
  // The serving process reads its queries from here, for the same reason.
  fs.writeFileSync(queryFile, JSON.stringify(queries));
} else {
  const queries = JSON.parse(fs.readFileSync(queryFile, 'utf8')) as string[];
  await warmVectors(brain);
  timings.warmMs = performance.now() - opened;
  const embedder = brain.embedder;
  timings.loaded = embedder
    ? (brain.storage.vectorIndex(brain.scope.tenantId, embedder.model)?.loaded ?? false)
    : false;
  for (const query of queries) {
    await yieldToLoop();
    const start = performance.now();
    await brain.services.memory.recall(brain.scope, { query, k: 10, project: PROJECT });
    timings.recallMs.push(performance.now() - start);
  }
}
/** RSS split into anonymous memory and file-backed pages (the database's mmap), in MB. */
function rssParts(): Record<string, number> {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024;
  return { anonMb: kb('RssAnon'), fileMb: kb('RssFile') };
}

// Read while the database and the index are still open: closing frees the index.
const memory = process.memoryUsage();
const report = {
  mode,
  ...readRss(),
  ...rssParts(),
  heapMb: memory.heapUsed / 1048576,
  externalMb: memory.external / 1048576,
  warmMs: timings.warmMs,
  indexLoaded: timings.loaded,
  recall: timings.recallMs.length > 0 ? summarize(timings.recallMs) : null,
};
await brain.close();
console.log(JSON.stringify(report));
