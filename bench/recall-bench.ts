/**
 * `npm run bench -- recall`: 100,000 memories in one tenant and project, 1,000 queries (half keywords,
 * half paraphrases). In-process recall latency, the vector stage's recall@10 against exact search, and
 * whether the target memory is found (a quality sanity figure).
 */

import type { MemoryFilter } from '../src/modules/memory/memory-store.js';
import type { SqliteStorage } from '../src/storage/sqlite/sqlite-storage.js';
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
import { generateCorpus } from './corpus.js';
import { type Figure, figure, formatTable, latencyFigures, readRss, rssFigures, summarize } from './stats.js';

export interface RecallBenchOptions {
  memories: number;
  queries: number;
}

const WARMUP = 50;
const K = 10;

export async function runRecallBench(
  options: RecallBenchOptions = { memories: 100_000, queries: 1000 },
): Promise<Figure[]> {
  const home = benchHome('recall');
  const brain = await openBench(home);
  try {
    const corpus = generateCorpus(options.memories, options.queries + WARMUP, 42);
    const load = await loadMemories(brain, corpus.memories);
    const warmMs = await warmVectors(brain);
    collectGarbage();
    const queries = corpus.queries.slice(WARMUP);
    for (const q of corpus.queries.slice(0, WARMUP))
      await brain.services.memory.recall(brain.scope, { query: q.text, k: K, project: PROJECT });

    const samples: number[] = [];
    const found = { keywords: [0, 0], paraphrase: [0, 0] } as Record<string, [number, number]>;
    let approximate = 0;
    for (const q of queries) {
      await yieldToLoop();
      const start = performance.now();
      const result = await brain.services.memory.recall(brain.scope, {
        query: q.text,
        k: K,
        project: PROJECT,
      });
      samples.push(performance.now() - start);
      if (result.vector_search === 'approximate') approximate++;
      const tally = found[q.kind] as [number, number];
      tally[1]++;
      if (result.hits.some((h) => h.id === load.ids[q.target])) tally[0]++;
    }
    const vector = await vectorRecallAtK(
      brain,
      queries.map((q) => q.text),
    );
    const summary = summarize(samples);
    const hitRate = (kind: string) => (found[kind]?.[0] ?? 0) / Math.max(1, found[kind]?.[1] ?? 1);
    return [
      figure('memories loaded', options.memories, 'memories'),
      figure('load (rememberMany x1000)', (options.memories * 1000) / load.ms, 'memories/s'),
      figure('vector index build', warmMs / 1000, 's'),
      ...latencyFigures('recall k=10', summary, { p50: 2, p95: 5, p99: 10 }),
      figure('queries answered with the ANN index', approximate / queries.length, 'share'),
      figure('vector recall@10 vs exact (tie-aware)', vector.tieAware, 'ratio', { op: '>=', value: 0.95 }),
      figure('vector recall@10 vs exact (id overlap)', vector.overlap, 'ratio'),
      figure('ANN vector stage alone p50 (k=10)', vector.approxP50, 'ms'),
      figure('exact vector stage alone p50 (no index yet)', vector.exactP50, 'ms'),
      figure('target in top 10: keyword queries', hitRate('keywords'), 'ratio'),
      figure('target in top 10: paraphrase queries', hitRate('paraphrase'), 'ratio'),
      ...rssFigures('recall bench process (holds the corpus too)', readRss()),
    ];
  } finally {
    await brain.close();
    removeHome(home);
  }
}

/**
 * The approximate vector stage against exact search, over the same filter. The hash embedder yields
 * many exactly tied similarities, so beside plain id overlap we count an approximate hit as correct
 * when it is as similar as the 10th exact hit (ties are interchangeable).
 */
async function vectorRecallAtK(brain: Awaited<ReturnType<typeof openBench>>, texts: string[]) {
  const embedder = brain.embedder;
  const storage = brain.storage;
  if (!embedder || storage.engine !== 'sqlite')
    return { tieAware: Number.NaN, overlap: Number.NaN, approxP50: Number.NaN, exactP50: Number.NaN };
  // The SQLite driver's own index against its own exact scan: a driver detail, measured here only.
  const vectors = (storage as SqliteStorage).vectors;
  const filter: MemoryFilter = { project: PROJECT };
  const now = new Date().toISOString();
  let tieAware = 0;
  let overlap = 0;
  let total = 0;
  const approxMs: number[] = [];
  const exactMs: number[] = [];
  const embeddings = await embedder.embed(texts);
  // All approximate searches first: an exact scan between them would evict the index from the CPU caches.
  const approximate = embeddings.map((embedding) => {
    const start = performance.now();
    const found = vectors.search(brain.scope.tenantId, embedding, embedder.model, filter, K, now);
    approxMs.push(performance.now() - start);
    return found;
  });
  for (const [i, embedding] of embeddings.entries()) {
    const approx = approximate[i] as (typeof approximate)[number];
    const start = performance.now();
    const exact = vectors.searchExact(brain.scope.tenantId, embedding, embedder.model, filter, K, now);
    exactMs.push(performance.now() - start);
    const floor = (exact.at(-1)?.similarity ?? 0) - 1e-6;
    const exactIds = new Set(exact.map((h) => h.rid));
    tieAware += approx.hits.filter((h) => h.similarity >= floor).length;
    overlap += approx.hits.filter((h) => exactIds.has(h.rid)).length;
    total += exact.length;
  }
  return {
    tieAware: tieAware / Math.max(1, total),
    overlap: overlap / Math.max(1, total),
    approxP50: summarize(approxMs).p50,
    // What the vector stage costs while a freshly started server is still building its index.
    exactP50: summarize(exactMs).p50,
  };
}

export async function printRecallBench(): Promise<Figure[]> {
  const figures = await runRecallBench();
  console.log(
    formatTable('recall: 100,000 memories, 1,000 queries (keywords + paraphrases), in-process', figures),
  );
  return figures;
}
