/**
 * `npm run bench -- rss`: peak RSS with 100,000 memories, each phase in a fresh Node process running the
 * compiled code: loading them, then serving 1,000 recalls from the loaded file with the vector index built.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { benchHome, removeHome } from './bench-brain.js';
import { type Figure, figure, formatTable } from './stats.js';

const CHILD = path.join(import.meta.dirname, 'rss-child.js');

function child(mode: 'load' | 'serve', home: string, count: number): { peakMb: number; currentMb: number } {
  const out = execFileSync(process.execPath, [CHILD, mode, home, String(count)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as { peakMb: number; currentMb: number };
}

export async function runRssBench(count = 100_000): Promise<Figure[]> {
  if (!import.meta.url.includes('dist-bench'))
    throw new Error('the rss bench runs compiled: npm run bench -- rss');
  const home = benchHome('rss');
  try {
    const load = child('load', home, count);
    const serve = child('serve', home, count);
    return [
      figure('serving process peak RSS (100k memories, index built, 1,000 recalls)', serve.peakMb, 'MB', {
        op: '<=',
        value: 300,
      }),
      figure('loading process peak RSS (100k memories inserted)', load.peakMb, 'MB', {
        op: '<=',
        value: 300,
      }),
    ];
  } finally {
    removeHome(home);
  }
}

export async function printRssBench(): Promise<Figure[]> {
  const figures = await runRssBench();
  console.log(formatTable('memory: fresh Node processes, compiled code, 100,000 memories', figures));
  return figures;
}
