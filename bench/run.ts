/**
 * `npm run bench -- <name>`: recall | remember | mcp | rss | tools | postgres | http | lifecycle | cache | dedupe | dedupe-eval | exec | all (default). Each prints p50/p95/p99,
 * throughput and memory with PASS/MISS against the targets; the exit code is 0 either way
 * (benchmarks report, tests decide).
 */
import os from 'node:os';
import { collectGarbage } from './bench-brain.js';
import { printCacheBench } from './cache-bench.js';
import { printDedupeBench } from './dedupe-bench.js';
import { printDedupeEval } from './dedupe-eval.js';
import { printExecBench } from './exec-bench.js';
import { printHttpBench } from './http-bench.js';
import { printLifecycleBench } from './lifecycle-bench.js';
import { printMcpBench } from './mcp-bench.js';
import { printPostgresBench } from './postgres-bench.js';
import { printRecallBench } from './recall-bench.js';
import { printRememberBench } from './remember-bench.js';
import { printRssBench } from './rss-bench.js';
import { type Figure, resetPeakRss } from './stats.js';
import { printToolsBench } from './tools-bench.js';

const BENCHES: Record<string, () => Promise<Figure[]>> = {
  recall: printRecallBench,
  remember: printRememberBench,
  mcp: printMcpBench,
  rss: printRssBench,
  tools: printToolsBench,
  postgres: printPostgresBench,
  http: printHttpBench,
  lifecycle: printLifecycleBench,
  cache: printCacheBench,
  dedupe: printDedupeBench,
  'dedupe-eval': printDedupeEval,
  exec: printExecBench,
};

const names = process.argv.slice(2);
const chosen = names.length === 0 || names.includes('all') ? Object.keys(BENCHES) : names;
const unknown = chosen.filter((n) => !(n in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown bench: ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}, all`);
  process.exit(2);
}
/** The load average says how much else ran on the machine: figures from a busy machine are noisier. */
function machine(): string {
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return `node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.arch()}, load ${load}`;
}

console.log(`${new Date().toISOString()} ${machine()}`);
const misses: string[] = [];
const started = performance.now();
for (const name of chosen) {
  // Each bench's RSS peak is its own: the previous bench's garbage is collected and the peak reset.
  collectGarbage();
  resetPeakRss();
  const start = performance.now();
  const figures = await (BENCHES[name] as () => Promise<Figure[]>)();
  for (const f of figures) if (f.pass === false) misses.push(`${name}: ${f.label}`);
  console.log(
    `(${name}: ${((performance.now() - start) / 1000).toFixed(0)} s; after it: load ${os.loadavg()[0]?.toFixed(2)})\n`,
  );
}
console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
console.log(misses.length === 0 ? 'all targets met' : `targets missed:\n  ${misses.join('\n  ')}`);
