/**
 * `npm run bench -- exec`: sandboxed Python through the execution queue, on SQLite and (when the
 * machine has it) PostgreSQL, in-process as `brain serve` runs it: the service queues a row, one of the
 * pool's 2 workers claims it, runs bubblewrap → python3, records the outcome, and the waiting caller
 * reads it. Prints
 *  - `print(1)` end to end, one at a time (the target: p50 ≤ 100 ms), beside the sandbox alone
 *    (`runSandboxed`, no queue) so the queue's own share is visible;
 *  - 100 small scripts queued at once, run by 2 workers (target ≥ 10 per second), with every result
 *    checked and no row left running;
 *  - RSS.
 * No peer runs beside it: mem0, Zep, basic-memory and the MCP memory server run no code, and Letta runs
 * tool code in E2B (a remote service this machine cannot reach) or in a local subprocess without
 * namespace isolation.
 */
import type { Brain } from '../src/app/build-brain.js';
import type { ExecutionView } from '../src/modules/execution/execution-schemas.js';
import { runSandboxed, sandboxProblem } from '../src/modules/execution/sandbox.js';
import {
  createTestDatabase,
  postgresUnavailable,
  startLocalPostgres,
} from '../test/services/local-postgres.js';
import { benchHome, collectGarbage, openBench, removeHome } from './bench-brain.js';
import { type Figure, figure, formatTable, latencyFigures, readRss, rssFigures, summarize } from './stats.js';

const SEQUENTIAL = 60;
const WARMUP = 5;
const QUEUED = 100;

const ENV = {
  BRAIN_EMBEDDER: 'none',
  BRAIN_WORKER_MIN: '2',
  BRAIN_WORKER_MAX: '2',
  BRAIN_SCHEDULER: 'false',
};

async function endToEnd(brain: Brain): Promise<number[]> {
  const ex = brain.services.executions;
  for (let i = 0; i < WARMUP; i++) await ex.execute(brain.scope, { code: 'print(1)' });
  collectGarbage();
  const samples: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const start = performance.now();
    const run = await ex.execute(brain.scope, { code: 'print(1)' });
    samples.push(performance.now() - start);
    if (run.status !== 'succeeded' || run.stdout !== '1\n')
      throw new Error(`print(1) gave ${JSON.stringify(run)}`);
  }
  return samples;
}

/** 100 small scripts queued at once; resolves when every one has ended, with the wall time. */
async function queued(
  brain: Brain,
): Promise<{ ms: number; wrong: number; running: number; perSecond: number }> {
  const ex = brain.services.executions;
  const start = performance.now();
  const runs = await Promise.all(
    Array.from({ length: QUEUED }, (_, i) =>
      ex.execute(brain.scope, {
        code: `import math\nsum(math.isqrt(n) for n in range(${1000 + i}))`,
        wait: false,
      }),
    ),
  );
  const ended: ExecutionView[] = [];
  for (const r of runs) {
    let current = r;
    while (current.status === 'queued' || current.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 20));
      current = await ex.get(brain.scope, { id: r.id });
    }
    ended.push(current);
  }
  const ms = performance.now() - start;
  const expected = (i: number) => {
    let s = 0;
    for (let n = 0; n < 1000 + i; n++) s += Math.floor(Math.sqrt(n));
    return String(s);
  };
  const wrong = ended.filter((r, i) => r.status !== 'succeeded' || r.result !== expected(i)).length;
  const counts = await brain.storage.stores().executions.counts();
  return { ms, wrong, running: counts.running + counts.queued, perSecond: (QUEUED * 1000) / ms };
}

async function sandboxAlone(): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await runSandboxed('print(1)');
  const samples: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const start = performance.now();
    await runSandboxed('print(1)');
    samples.push(performance.now() - start);
  }
  return samples;
}

export async function printExecBench(): Promise<Figure[]> {
  const problem = sandboxProblem();
  if (problem) throw new Error(`the sandbox cannot run here: ${problem}`);
  const figures: Figure[] = [];
  const alone = summarize(await sandboxAlone());
  console.log(
    formatTable('the sandbox alone: runSandboxed("print(1)"), no queue', latencyFigures('sandbox', alone)),
  );
  const engines: [string, Record<string, string>, (() => void) | null][] = [['sqlite', {}, null]];
  const missing = postgresUnavailable();
  if (!missing) {
    const cluster = await startLocalPostgres({ durable: true });
    engines.push([
      'postgres',
      { BRAIN_DATABASE_URL: createTestDatabase(cluster.baseUrl, 'exec') },
      () => cluster.stop(),
    ]);
  } else console.log(`(postgres skipped: ${missing})`);
  for (const [engine, env, stop] of engines) {
    const home = benchHome(`exec-${engine}`);
    const brain = await openBench(home, { ...ENV, ...env });
    try {
      if (!brain.startExecutionWorkers()) throw new Error('the execution workers did not start');
      const e2e = summarize(await endToEnd(brain));
      const q = await queued(brain);
      const own: Figure[] = [
        ...latencyFigures(`${engine} print(1) end to end`, e2e, { p50: 100 }),
        figure(`${engine} queue's share of p50 (end to end - sandbox)`, e2e.p50 - alone.p50, 'ms'),
        figure(`${engine} 100 queued, 2 workers: runs per second`, q.perSecond, 'runs/s', {
          op: '>=',
          value: 10,
        }),
        figure(`${engine} 100 queued: all finished in`, q.ms, 'ms'),
        figure(`${engine} 100 queued: wrong or not succeeded`, q.wrong, 'runs', { op: '<=', value: 0 }),
        figure(`${engine} 100 queued: left queued or running`, q.running, 'rows', { op: '<=', value: 0 }),
        ...rssFigures(engine, readRss()),
      ];
      console.log(formatTable(`execution through the queue on ${engine} (2 workers)`, own));
      figures.push(...own);
    } finally {
      await brain.close();
      removeHome(home);
      stop?.();
    }
  }
  figures.push(...latencyFigures('sandbox alone', alone));
  return figures;
}
