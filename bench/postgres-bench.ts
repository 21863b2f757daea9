/**
 * `npm run bench -- postgres`: the PostgreSQL driver against SQLite in one run, on a throwaway cluster
 * on 127.0.0.1 with the server's durable defaults (fsync on). Recall at 100,000 memories in-process
 * through the driver, remember single and batched, `brain store copy` of the 100,000 memories, and two
 * replicas over HTTP (requests per second of one replica and of two, with CPU use).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Brain } from '../src/app/build-brain.js';
import { copyStore } from '../src/app/store-copy.js';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import { silentLogger } from '../src/core/logger.js';
import {
  createTestDatabase,
  type LocalPostgres,
  postgresUnavailable,
  startLocalPostgres,
} from '../test/services/local-postgres.js';
import {
  benchEnv,
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
import { BRAIN_BIN } from './mcp-bench.js';
import {
  type Figure,
  figure,
  formatGrid,
  formatNumber,
  formatTable,
  latencyFigures,
  summarize,
} from './stats.js';

const MEMORIES = 100_000;
const QUERIES = 500;
const WARMUP = 50;

async function recallSamples(brain: Brain, queries: string[]): Promise<number[]> {
  for (const q of queries.slice(0, WARMUP))
    await brain.services.memory.recall(brain.scope, { query: q, k: 10, project: PROJECT });
  const samples: number[] = [];
  for (const q of queries.slice(WARMUP)) {
    await yieldToLoop();
    const start = performance.now();
    await brain.services.memory.recall(brain.scope, { query: q, k: 10, project: PROJECT });
    samples.push(performance.now() - start);
  }
  return samples;
}

async function rememberRates(brain: Brain): Promise<{ single: number; concurrent: number; batched: number }> {
  const single = 1000;
  let start = performance.now();
  for (let i = 0; i < single; i++)
    await brain.services.memory.remember(brain.scope, {
      content: `single write ${i} about the ${i % 7} rack`,
      project: 'w',
    });
  const singleRate = (single * 1000) / (performance.now() - start);
  // The same single-memory calls from 8 callers at once, as a server with several clients sees them.
  start = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async (_, c) => {
      for (let i = 0; i < single / 8; i++)
        await brain.services.memory.remember(brain.scope, {
          content: `caller ${c} write ${i} on node ${i % 5}`,
          project: 'w',
        });
    }),
  );
  const concurrentRate = (single * 1000) / (performance.now() - start);
  const batches = 20;
  start = performance.now();
  for (let b = 0; b < batches; b++)
    await brain.services.memory.rememberMany(
      brain.scope,
      Array.from({ length: 1000 }, (_, i) => ({
        content: `batched write ${b}-${i} of the ${i % 13} cluster`,
        project: 'w',
      })),
    );
  return {
    single: singleRate,
    concurrent: concurrentRate,
    batched: (batches * 1000 * 1000) / (performance.now() - start),
  };
}

/** Stateless MCP recall calls against `urls` (round robin) from `clients` concurrent clients for `ms`. */
async function httpLoad(urls: string[], clients: number, ms: number): Promise<{ rps: number; p95: number }> {
  const connections = await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const client = new Client({ name: 'bench', version: '0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${urls[i % urls.length]}/mcp`)));
      return client;
    }),
  );
  const samples: number[] = [];
  const end = performance.now() + ms;
  await Promise.all(
    connections.map(async (client, i) => {
      let n = 0;
      while (performance.now() < end) {
        const start = performance.now();
        await client.callTool({
          name: 'recall',
          arguments: { query: `deploy window of service ${(i * 31 + n++) % 97}` },
        });
        samples.push(performance.now() - start);
      }
    }),
  );
  await Promise.all(connections.map((c) => c.close()));
  return { rps: (samples.length * 1000) / ms, p95: summarize(samples).p95 };
}

function cpuSeconds(pid: number): number {
  try {
    const stat = (fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
    return (Number(stat[11]) + Number(stat[12])) / 100;
  } catch {
    return 0;
  }
}

async function serve(env: Record<string, string>): Promise<{ url: string; pid: number; stop: () => void }> {
  const child = spawn(process.execPath, [BRAIN_BIN, 'serve', '--port', '0'], {
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c) => {
      out += c;
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`brain serve exited ${code}: ${out}`)));
  });
  child.stdout.resume();
  return { url, pid: child.pid as number, stop: () => child.kill('SIGKILL') };
}

export async function runPostgresBench(): Promise<{ figures: Figure[]; tables: string[] }> {
  const missing = postgresUnavailable();
  if (missing) throw new Error(`${missing}: run scripts/install-services.sh as root`);
  const cluster: LocalPostgres = await startLocalPostgres({ durable: true });
  const tables: string[] = [];
  const figures: Figure[] = [];
  const homes: string[] = [];
  try {
    const corpus = generateCorpus(MEMORIES, QUERIES + WARMUP, 42);
    const queries = corpus.queries.map((q) => q.text);
    const rows: Record<string, Record<string, number>> = {};
    const engines = {
      sqlite: {},
      postgres: { BRAIN_DATABASE_URL: createTestDatabase(cluster.baseUrl, 'bench') },
    } as Record<string, Record<string, string>>;
    let sqliteHome = '';
    for (const [engine, env] of Object.entries(engines)) {
      const home = benchHome(`pg-${engine}`);
      homes.push(home);
      if (engine === 'sqlite') sqliteHome = home;
      const brain = await openBench(home, env);
      try {
        const rates = await rememberRates(brain);
        const load = await loadMemories(brain, corpus.memories);
        const warmMs = await warmVectors(brain);
        collectGarbage();
        const s = summarize(await recallSamples(brain, queries));
        rows[engine] = {
          'remember single /s': rates.single,
          'remember single, 8 callers /s': rates.concurrent,
          'remember batched /s': rates.batched,
          'load 100k /s': (MEMORIES * 1000) / load.ms,
          'vector index build s': warmMs / 1000,
          'recall p50 ms': s.p50,
          'recall p95 ms': s.p95,
          'recall p99 ms': s.p99,
          'recall /s': 1000 / s.mean,
        };
        if (engine === 'postgres') {
          figures.push(...latencyFigures('postgres recall k=10 at 100k', s, { p50: 5, p95: 15 }));
          figures.push(figure('postgres remember single, one caller', rates.single, 'memories/s'));
          figures.push(
            figure('postgres remember single, 8 callers', rates.concurrent, 'memories/s', {
              op: '>=',
              value: 1000,
            }),
          );
          figures.push(
            figure('postgres remember batched', rates.batched, 'memories/s', { op: '>=', value: 10_000 }),
          );
        }
      } finally {
        await brain.close();
      }
    }
    const labels = Object.keys(rows.sqlite ?? {});
    tables.push(
      formatGrid(
        'recall and remember, 100,000 memories, in-process (same corpus, same run)',
        ['figure', 'sqlite', 'postgres', 'postgres / sqlite'],
        labels.map((l) => {
          const [a, b] = [rows.sqlite?.[l] ?? 0, rows.postgres?.[l] ?? 0];
          return [l, formatNumber(a), formatNumber(b), (b / a).toFixed(2)];
        }),
      ),
    );

    console.log(tables.at(-1));
    // brain store copy of the SQLite store (100k + the writes above) into an empty PostgreSQL database.
    const config = requireValidConfig(loadConfig({ env: benchEnv(sqliteHome), cwd: sqliteHome }));
    const copy = await copyStore(config, {
      from: `sqlite:${config.dbPath}`,
      to: createTestDatabase(cluster.baseUrl, 'copy'),
      cwd: sqliteHome,
      logger: silentLogger,
    });
    figures.push(figure('store copy sqlite → postgres', copy.perSecond, 'memories/s'));
    figures.push(figure('store copy memories', copy.memories.source, 'memories'));

    // Two replicas on one PostgreSQL over HTTP (stateless MCP), 8 clients, 10 s each.
    const url = createTestDatabase(cluster.baseUrl, 'replicas');
    // Rate limits off: the default (100 requests per second per caller) would measure the limiter.
    const replicaEnv = (home: string) => ({
      BRAIN_HOME: home,
      BRAIN_DATABASE_URL: url,
      BRAIN_RATE_RPS: '0',
      BRAIN_RATE_BURST: '0',
      BRAIN_WRITE_DAILY_LIMIT: '0',
    });
    const [h1, h2] = [benchHome('rep1'), benchHome('rep2')];
    homes.push(h1, h2);
    const one = await serve(replicaEnv(h1));
    const seedBrain = await openBench(benchHome('seed'), { BRAIN_DATABASE_URL: url });
    await loadMemories(seedBrain, corpus.memories.slice(0, 10_000));
    // Serving is measured in the steady state: the seeded vectors are in the HNSW index first.
    await warmVectors(seedBrain);
    await seedBrain.close();
    const two = await serve(replicaEnv(h2));
    try {
      let cpu = cpuSeconds(one.pid);
      const single = await httpLoad([one.url], 8, 10_000);
      const cpuOne = (cpuSeconds(one.pid) - cpu) / 10;
      cpu = cpuSeconds(one.pid) + cpuSeconds(two.pid);
      const pair = await httpLoad([one.url, two.url], 8, 10_000);
      const cpuTwo = (cpuSeconds(one.pid) + cpuSeconds(two.pid) - cpu) / 10;
      figures.push(figure('one replica, recall over HTTP', single.rps, 'req/s'));
      figures.push(figure('two replicas, recall over HTTP', pair.rps, 'req/s'));
      figures.push(figure('two / one', pair.rps / single.rps, 'ratio'));
      figures.push(figure('brain CPU, one replica', cpuOne, 'cores'));
      figures.push(figure('brain CPU, two replicas', cpuTwo, 'cores'));
      figures.push(figure('p95 one replica', single.p95, 'ms'));
      figures.push(figure('p95 two replicas', pair.p95, 'ms'));
      figures.push(figure('machine cores', os.cpus().length, 'cores'));
    } finally {
      one.stop();
      two.stop();
    }
    return { figures, tables };
  } finally {
    cluster.stop();
    for (const h of homes) removeHome(h);
  }
}

export async function printPostgresBench(): Promise<Figure[]> {
  const { figures } = await runPostgresBench();
  console.log(formatTable('postgres: targets, store copy, replicas', figures));
  return figures;
}
