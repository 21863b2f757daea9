/**
 * A fresh process for `npm run bench -- rss`: `load <home> <count>` fills a database; `serve <home>`
 * opens it, builds the vector index, runs 1,000 recalls, and prints its peak RSS (VmHWM) as JSON.
 */
import fs from 'node:fs';
import { loadMemories, openBench, PROJECT, warmVectors, yieldToLoop } from './bench-brain.js';
import { generateCorpus } from './corpus.js';
import { readRss } from './stats.js';

const [mode, home, countText] = process.argv.slice(2);
if (!home || (mode !== 'load' && mode !== 'serve')) {
  console.error('usage: rss-child load|serve <home> [count]');
  process.exit(2);
}
const brain = await openBench(home);
if (mode === 'load') {
  const corpus = generateCorpus(Number(countText ?? 100_000), 0, 42);
  await loadMemories(brain, corpus.memories);
} else {
  await warmVectors(brain);
  const { queries } = generateCorpus(100_000, 1000, 42);
  for (const q of queries) {
    await yieldToLoop();
    await brain.services.memory.recall(brain.scope, { query: q.text, k: 10, project: PROJECT });
  }
}
await brain.close();
/** RSS split into anonymous memory and file-backed pages (the database's mmap), in MB. */
function rssParts(): Record<string, number> {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024;
  return { anonMb: kb('RssAnon'), fileMb: kb('RssFile') };
}

const memory = process.memoryUsage();
console.log(
  JSON.stringify({
    mode,
    ...readRss(),
    ...rssParts(),
    heapMb: memory.heapUsed / 1048576,
    externalMb: memory.external / 1048576,
  }),
);
