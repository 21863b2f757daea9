/**
 * `npm run bench -- rss`: peak RSS with 100,000 memories, each phase in a fresh Node process running the
 * compiled code: loading them; serving 1,000 recalls from the loaded file with the vector index built
 * from the rows (a first start, which saves the index at close); and serving them again after a restart,
 * with the saved index loaded.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { benchHome, removeHome } from './bench-brain.js';
import { type Figure, figure, formatTable, type LatencySummary, latencyFigures } from './stats.js';

const CHILD = path.join(import.meta.dirname, 'rss-child.js');

/** What rss-child prints on its last line. */
interface ChildReport {
  peakMb: number;
  currentMb: number;
  anonMb: number;
  fileMb: number;
  heapMb: number;
  warmMs: number;
  indexLoaded: boolean;
  recall: LatencySummary | null;
}

function child(mode: 'load' | 'serve', home: string, count: number): ChildReport {
  const out = execFileSync(process.execPath, [CHILD, mode, home, String(count)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as ChildReport;
}

export async function runRssBench(count = 100_000): Promise<Figure[]> {
  if (!import.meta.url.includes('dist-bench'))
    throw new Error('the rss bench runs compiled: npm run bench -- rss');
  const home = benchHome('rss');
  try {
    const load = child('load', home, count);
    const serve = child('serve', home, count);
    const restart = child('serve', home, count);
    if (serve.indexLoaded || !restart.indexLoaded)
      throw new Error('expected the first serve to build the vector index and the restart to load it');
    return [
      figure('serving process peak RSS (VmHWM)', serve.peakMb, 'MB', { op: '<=', value: 300 }),
      figure('serving process RSS after the recalls', serve.currentMb, 'MB'),
      figure('  of which anonymous (heap, index, caches)', serve.anonMb, 'MB'),
      figure('  of which file-backed (database mmap)', serve.fileMb, 'MB'),
      figure('serving process JS heap used', serve.heapMb, 'MB'),
      figure('first start: open to vector index ready (built)', serve.warmMs / 1000, 's'),
      ...(serve.recall ? latencyFigures('serving process recall k=10', serve.recall) : []),
      figure('restart peak RSS (VmHWM), index loaded', restart.peakMb, 'MB', { op: '<=', value: 300 }),
      figure('  of which anonymous (heap, index, caches)', restart.anonMb, 'MB'),
      figure('  of which file-backed (database mmap)', restart.fileMb, 'MB'),
      figure('restart: open to vector index ready (loaded)', restart.warmMs / 1000, 's'),
      ...(restart.recall ? latencyFigures('restart recall k=10', restart.recall) : []),
      figure('loading process peak RSS (VmHWM, informational)', load.peakMb, 'MB'),
    ];
  } finally {
    removeHome(home);
  }
}

export async function printRssBench(): Promise<Figure[]> {
  const figures = await runRssBench();
  console.log(
    formatTable(
      'memory: 100,000 memories; fresh Node processes on compiled code (load; open + build index + 1,000 recalls; restart + load index + 1,000 recalls)',
      figures,
    ),
  );
  return figures;
}
