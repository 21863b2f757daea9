/**
 * `npm run bench -- <name>`: recall | remember | mcp | rss | all (default). Each prints p50/p95/p99,
 * throughput and memory with PASS/MISS against the targets; the exit code is 0 either way
 * (benchmarks report, tests decide).
 */
import os from 'node:os';
import { printMcpBench } from './mcp-bench.js';
import { printRecallBench } from './recall-bench.js';
import { printRememberBench } from './remember-bench.js';
import { printRssBench } from './rss-bench.js';
import type { Figure } from './stats.js';

const BENCHES: Record<string, () => Promise<Figure[]>> = {
  recall: printRecallBench,
  remember: printRememberBench,
  mcp: printMcpBench,
  rss: printRssBench,
};

const names = process.argv.slice(2);
const chosen = names.length === 0 || names.includes('all') ? Object.keys(BENCHES) : names;
const unknown = chosen.filter((n) => !(n in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown bench: ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}, all`);
  process.exit(2);
}
console.log(
  `node ${process.version}, ${os.cpus().length} cores, ${os.platform()} ${os.arch()}, ${new Date().toISOString()}`,
);
const misses: string[] = [];
for (const name of chosen) {
  const figures = await (BENCHES[name] as () => Promise<Figure[]>)();
  for (const f of figures) if (f.pass === false) misses.push(`${name}: ${f.label}`);
  console.log('');
}
console.log(misses.length === 0 ? 'all targets met' : `targets missed:\n  ${misses.join('\n  ')}`);
