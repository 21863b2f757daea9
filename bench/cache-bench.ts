/**
 * `npm run bench -- cache`: recall's cache of answers (BRAIN_CACHE_SIZE_MB) on a repeated-query
 * workload. 20,000 memories in one tenant; 5,000 recalls of which 80% repeat a query from a pool of 200
 * and 20% are queries never asked before. The same workload runs with the cache on (32 MB) and off (0)
 * in one process on the same file, and once more with a write every 50 recalls (each write drops the
 * tenant's answers). Prints p50/p95/p99 and throughput of each, the p95 of cache hits alone (the issue's
 * target: ≤ 0.5 ms in-process), the hit rate (the production-hardening plan's: above 70%), the cache's
 * bytes and the process's RSS. With PostgreSQL installed, the cache-on runs again on a throwaway
 * cluster on 127.0.0.1 (durable defaults): there a hit reads the tenant's change token first, one round
 * trip, so that no replica serves an answer made before another replica's acknowledged write.
 */
import type { Brain } from '../src/app/build-brain.js';
import {
  createTestDatabase,
  type LocalPostgres,
  postgresUnavailable,
  startLocalPostgres,
} from '../test/services/local-postgres.js';
import {
  benchHome,
  collectGarbage,
  loadMemories,
  openBench,
  PROJECT,
  removeHome,
  warmVectors,
  yieldToLoop,
} from './bench-brain.js';
import { createRandom, generateCorpus } from './corpus.js';
import { type Figure, figure, formatTable, latencyFigures, readRss, rssFigures, summarize } from './stats.js';

const MEMORIES = 20_000;
const RECALLS = 5000;
const POOL = 200;
/** The share of recalls that repeat a pool query. */
const REPEAT = 0.8;
const WRITE_EVERY = 50;
const WARMUP = 100;

/** The workload: each recall's query text, the same sequence for every run (seeded). */
function workload(queries: string[]): string[] {
  const rand = createRandom(7);
  const pool = queries.slice(0, POOL);
  let fresh = POOL + WARMUP;
  return Array.from({ length: RECALLS }, () =>
    rand() < REPEAT ? (pool[Math.floor(rand() * POOL)] as string) : (queries[fresh++] as string),
  );
}

interface RunResult {
  all: number[];
  hits: number[];
  hitRate: number;
  bytes: number;
}

/** Recalls every query in order (and a write every `writeEvery` recalls), timing each. */
async function run(brain: Brain, texts: string[], warmup: string[], writeEvery = 0): Promise<RunResult> {
  const memory = brain.services.memory;
  for (const query of warmup) await memory.recall(brain.scope, { query, k: 10, project: PROJECT });
  collectGarbage();
  const before = memory.cacheStats().results;
  const all: number[] = [];
  const hits: number[] = [];
  for (const [i, query] of texts.entries()) {
    if (writeEvery > 0 && i > 0 && i % writeEvery === 0)
      await memory.remember(brain.scope, { content: `cache bench write ${i}`, project: PROJECT });
    await yieldToLoop();
    const hitsBefore = memory.cacheStats().results.hits;
    const start = performance.now();
    await memory.recall(brain.scope, { query, k: 10, project: PROJECT });
    const ms = performance.now() - start;
    all.push(ms);
    if (memory.cacheStats().results.hits > hitsBefore) hits.push(ms);
  }
  const after = memory.cacheStats();
  const lookups = after.results.hits - before.hits + (after.results.misses - before.misses);
  return {
    all,
    hits,
    hitRate: (after.results.hits - before.hits) / Math.max(1, lookups),
    bytes: after.bytes,
  };
}

export async function runCacheBench(): Promise<Figure[]> {
  const home = benchHome('cache');
  // Texts repeat across the corpus's generated queries: only distinct ones, so a "new" query is new.
  const corpus = generateCorpus(MEMORIES, 4 * (POOL + WARMUP + RECALLS), 42);
  const queries = [...new Set(corpus.queries.map((q) => q.text))];
  if (queries.length < POOL + WARMUP + RECALLS) throw new Error('the corpus has too few distinct queries');
  const texts = workload(queries);
  const warmup = queries.slice(POOL, POOL + WARMUP);
  const figures: Figure[] = [figure('memories', MEMORIES, 'memories')];
  try {
    let brain = await openBench(home, { BRAIN_CACHE_SIZE_MB: '32' });
    let on: RunResult;
    let writes: RunResult;
    try {
      await loadMemories(brain, corpus.memories);
      await warmVectors(brain);
      on = await run(brain, texts, warmup);
      writes = await run(brain, texts, warmup, WRITE_EVERY);
    } finally {
      await brain.close();
    }
    brain = await openBench(home, { BRAIN_CACHE_SIZE_MB: '0' });
    let off: RunResult;
    try {
      await warmVectors(brain);
      off = await run(brain, texts, warmup);
    } finally {
      await brain.close();
    }
    figures.push(
      figure(`repeat ratio (pool of ${POOL})`, REPEAT, 'share'),
      figure('hit rate, cache on', on.hitRate, 'ratio', { op: '>=', value: 0.7 }),
      ...latencyFigures('cache hit', summarize(on.hits), { p95: 0.5 }),
      ...latencyFigures('recall, cache on (all)', summarize(on.all)),
      ...latencyFigures('recall, cache off (all)', summarize(off.all)),
      figure('cache bytes after the run', on.bytes / (1024 * 1024), 'MB'),
      figure(`hit rate, a write every ${WRITE_EVERY} recalls`, writes.hitRate, 'ratio'),
      ...latencyFigures(`recall, cache on, a write every ${WRITE_EVERY}`, summarize(writes.all)),
    );
    figures.push(
      ...(await postgresFigures(corpus.memories, texts, warmup)),
      ...rssFigures('cache bench process', readRss()),
    );
    return figures;
  } finally {
    removeHome(home);
  }
}

/** The cache-on runs on PostgreSQL (none, with the reason printed, when it is not installed). */
async function postgresFigures(
  memories: Parameters<typeof loadMemories>[1],
  texts: string[],
  warmup: string[],
): Promise<Figure[]> {
  const missing = postgresUnavailable();
  if (missing) {
    console.log(`cache: PostgreSQL runs skipped (${missing})`);
    return [];
  }
  const cluster: LocalPostgres = await startLocalPostgres({ durable: true });
  const home = benchHome('cache-pg');
  try {
    const brain = await openBench(home, {
      BRAIN_CACHE_SIZE_MB: '32',
      BRAIN_DATABASE_URL: createTestDatabase(cluster.baseUrl, 'cache'),
    });
    try {
      await loadMemories(brain, memories);
      await warmVectors(brain);
      const on = await run(brain, texts, warmup);
      const writes = await run(brain, texts, warmup, WRITE_EVERY);
      return [
        figure('postgres hit rate, cache on', on.hitRate, 'ratio', { op: '>=', value: 0.7 }),
        ...latencyFigures('postgres cache hit', summarize(on.hits)),
        ...latencyFigures('postgres recall, cache on (all)', summarize(on.all)),
        figure(`postgres hit rate, a write every ${WRITE_EVERY} recalls`, writes.hitRate, 'ratio'),
        ...latencyFigures(`postgres recall, cache on, a write every ${WRITE_EVERY}`, summarize(writes.all)),
      ];
    } finally {
      await brain.close();
    }
  } finally {
    removeHome(home);
    cluster.stop();
  }
}

export async function printCacheBench(): Promise<Figure[]> {
  const figures = await runCacheBench();
  console.log(
    formatTable(
      `cache: ${MEMORIES.toLocaleString('en')} memories, ${RECALLS.toLocaleString('en')} recalls, ${REPEAT * 100}% repeated from ${POOL} queries, in-process`,
      figures,
    ),
  );
  return figures;
}
