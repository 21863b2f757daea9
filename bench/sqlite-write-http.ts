/**
 * `node dist-bench/bench/sqlite-write-http.js`: one unthrottled run of the HTTP bench, on SQLite, so
 * that a change to the write (or recall) path can be measured in a minute instead of the whole bench's
 * half hour. The same server as `npm run bench -- http` (BRAIN_WORKERS=2, auth on, limits off, 100,000
 * memories, 16 connections unthrottled, autocannon in this process), run BENCH_RUNS times on a fresh
 * copy of one seeded store each, with the median printed.
 *
 * Settings (environment): BENCH_OP, `remember` (the default) or `recall` (2,000 distinct queries,
 * cycled, as the HTTP bench sends); BENCH_SEED_DIR keeps the seeded store between invocations
 * (default: a temp dir, removed); BENCH_WORKERS (2); BENCH_RUNS (3); BENCH_RUN_S (10);
 * BENCH_SERVER_NODE_OPTIONS, the server's NODE_OPTIONS (e.g. a `--require` of a preload that profiles
 * the workers).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createApiKey } from '../src/modules/auth/api-keys.js';
import { benchEnv, benchHome, loadMemories, openBench, removeHome, warmVectors } from './bench-brain.js';
import { generateCorpus } from './corpus.js';
import { type LoadRun, loadRun } from './http-load.js';
import { startServer } from './http-server.js';
import { formatGrid, formatNumber, median } from './stats.js';

const MEMORIES = 100_000;
const QUERIES = 2000;
const CONNECTIONS = 16;
const WARM_S = 3;

const op = process.env.BENCH_OP ?? 'remember';
if (op !== 'remember' && op !== 'recall') throw new Error(`BENCH_OP must be remember or recall, not ${op}`);
const workers = Number(process.env.BENCH_WORKERS ?? 2);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const runS = Number(process.env.BENCH_RUN_S ?? 10);
/** Node's --cpu-prof is refused in NODE_OPTIONS; a `--require` of a profiling preload is not. */
const serverNodeOptions = process.env.BENCH_SERVER_NODE_OPTIONS;

/** The seeded home (100k memories, vector index built, one API key); made once when BENCH_SEED_DIR is kept. */
async function seeded(dir: string): Promise<string> {
  const keyFile = path.join(dir, 'bench-key');
  if (fs.existsSync(keyFile)) return fs.readFileSync(keyFile, 'utf8');
  fs.mkdirSync(dir, { recursive: true });
  const corpus = generateCorpus(MEMORIES, QUERIES, 42);
  const brain = await openBench(dir);
  try {
    await loadMemories(brain, corpus.memories);
    await brain.settle();
    await warmVectors(brain);
    const { key } = await createApiKey(
      brain.storage.stores().apiKeys,
      { tenantId: 'default', scopes: ['read', 'write', 'admin'], name: 'write bench' },
      new Date(),
    );
    fs.writeFileSync(keyFile, key);
    return key;
  } finally {
    await brain.close();
  }
}

/** CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat; 0 when unreadable. */
function cpuMsOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** A measured run and the CPU it took per response: the server's workers and this process (autocannon). */
interface WriteRun {
  load: LoadRun;
  serverCpuMs: number;
  clientCpuMs: number;
}

async function writeRun(
  seedDir: string,
  key: string,
  n: number,
  queries: readonly string[],
): Promise<WriteRun> {
  const home = benchHome('write-http');
  fs.cpSync(seedDir, home, { recursive: true });
  const server = await startServer({
    ...benchEnv(home),
    LOG_LEVEL: 'warn',
    BRAIN_WORKERS: String(workers),
    BRAIN_MCP_MODE: 'stateless',
    BRAIN_RATE_RPS: '0',
    BRAIN_RATE_BURST: '0',
    BRAIN_WRITE_DAILY_LIMIT: '0',
    ...(serverNodeOptions ? { NODE_OPTIONS: serverNodeOptions } : {}),
  });
  try {
    const stamp = `${Date.now().toString(36)}-${n}`;
    const options = (durationS: number) => ({
      url: server.url,
      method: 'POST' as const,
      token: key,
      ...(op === 'recall'
        ? {
            path: '/v1/memories/search',
            body: (i: number) => JSON.stringify({ query: queries[i % queries.length], k: 10 }),
          }
        : {
            path: '/v1/memories',
            body: (i: number) =>
              JSON.stringify({
                content: `bench write ${i} (${stamp}) about rack ${i % 97} in hall ${i % 7}`,
              }),
          }),
      connections: CONNECTIONS,
      durationS,
    });
    await loadRun(options(WARM_S));
    // The primary too: with one worker it serves itself; with more it only hands out connections.
    const pids = [server.pid, ...server.workers().map((w) => w.pid)];
    const serverBefore = pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0);
    const clientBefore = process.cpuUsage();
    const load = await loadRun(options(runS));
    const client = process.cpuUsage(clientBefore);
    const serverMs = pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0) - serverBefore;
    return {
      load,
      serverCpuMs: serverMs / load.responses,
      clientCpuMs: (client.user + client.system) / 1000 / load.responses,
    };
  } finally {
    const stop = await server.stop();
    const warnings = server.warnings();
    if (warnings.length > 0)
      console.log(`server warnings (${warnings.length}): ${warnings.slice(0, 5).join('\n')}`);
    if (stop.exitCode !== 0) console.log(`server exit code ${stop.exitCode}`);
    removeHome(home);
  }
}

const keep = process.env.BENCH_SEED_DIR;
const seedDir = keep ?? benchHome('write-seed');
try {
  const key = await seeded(seedDir);
  // The queries are the corpus's (seeded the same way, so they match the stored memories).
  const queries = generateCorpus(MEMORIES, QUERIES, 42).queries.map((q) => q.text);
  const measured: WriteRun[] = [];
  for (let i = 0; i < runs; i++) measured.push(await writeRun(seedDir, key, i, queries));
  const results = measured.map((m) => m.load);
  const row = (
    label: string,
    rps: number,
    l: { p50: number; p95: number; p99: number },
    failed: number,
    cpu: { server: number; client: number },
  ) => [
    label,
    formatNumber(rps),
    formatNumber(l.p50),
    formatNumber(l.p95),
    formatNumber(l.p99),
    String(failed),
    formatNumber(cpu.server),
    formatNumber(cpu.client),
  ];
  const rows = measured.map((m, i) =>
    row(`run ${i + 1}`, m.load.achievedRps, m.load.latency, m.load.errors + m.load.non2xx, {
      server: m.serverCpuMs,
      client: m.clientCpuMs,
    }),
  );
  rows.push(
    row(
      'median',
      median(results.map((r) => r.achievedRps)),
      {
        p50: median(results.map((r) => r.latency.p50)),
        p95: median(results.map((r) => r.latency.p95)),
        p99: median(results.map((r) => r.latency.p99)),
      },
      results.reduce((s, r) => s + r.errors + r.non2xx, 0),
      {
        server: median(measured.map((m) => m.serverCpuMs)),
        client: median(measured.map((m) => m.clientCpuMs)),
      },
    ),
  );
  console.log(
    formatGrid(
      `${op} over HTTP, sqlite, ${workers} worker(s), ${CONNECTIONS} connections, ${runS} s runs, latency in ms`,
      [
        'run',
        'achieved req/s',
        'p50',
        'p95',
        'p99',
        'errors + non-2xx',
        'server CPU ms/req',
        'client CPU ms/req',
      ],
      rows,
    ),
  );
} finally {
  if (!keep) removeHome(seedDir);
}
