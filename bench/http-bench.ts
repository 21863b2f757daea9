/**
 * `npm run bench -- http`: the REST API of a spawned `brain serve` under autocannon, on a SQLite file
 * and then on PostgreSQL, each holding 100,000 memories. Per engine: recall at fixed rates and
 * unthrottled (the rate at which p95 stays within 20 ms), remember unthrottled, what authentication
 * and rate limits cost per request (the same run three ways), `/metrics` scrapes under load and the
 * workers' memory. The server runs two workers (node:cluster); autocannon runs in this process, on
 * the same two cores.
 */
import os from 'node:os';
import { createApiKey } from '../src/modules/auth/api-keys.js';
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
  removeHome,
  warmVectors,
} from './bench-brain.js';
import { generateCorpus } from './corpus.js';
import { accessCosts } from './http-access-costs.js';
import { type LoadOptions, type LoadRun, loadRun, type WarmResult, warmServer } from './http-load.js';
import { type ServerProcess, type StopResult, startServer } from './http-server.js';
import { type Figure, figure, formatGrid, formatNumber, formatTable, summarize } from './stats.js';

const MEMORIES = 100_000;
/** Distinct recall queries, cycled: more than any cache of the server holds for a run. */
const QUERIES = 2000;
const WORKERS = 2;
const CONNECTIONS = 16;
const RUN_S = 10;
/**
 * Fixed rates as shares of the unthrottled run's throughput (rates above what the server does all
 * saturate and say nothing), plus the target rate, during which /metrics is scraped.
 */
const RATE_SHARES = [0.5, 0.7, 0.85];
const SCRAPE_RATE = 1000;
/** autocannon's rate is whole requests per second per connection and phase: rates are multiples of this. */
const RATE_STEP = 40;
const SCRAPES = 20;
const SCRAPE_EVERY_MS = 250;
/**
 * The rate of the three overhead runs (auth off; auth on; auth and limits on): well below what one
 * server does on 100k memories here (~600 req/s on SQLite), so latency is service time, not queueing.
 */
const OVERHEAD_RATE = 200;
const OVERHEAD_S = 6;
const TARGETS = { recallRps: 1000, recallP95Ms: 20, writeRps: 2000 };
const RECALL = '/v1/memories/search';

/** The server's settings for a run: limits off (`false`) or counted but never reached (`true`). */
function serverEnv(home: string, engineEnv: Record<string, string>, limits: boolean): Record<string, string> {
  return {
    ...benchEnv(home),
    ...engineEnv,
    LOG_LEVEL: 'warn',
    BRAIN_WORKERS: String(WORKERS),
    BRAIN_MCP_MODE: 'stateless',
    BRAIN_RATE_RPS: limits ? '100000' : '0',
    BRAIN_RATE_BURST: limits ? '100000' : '0',
    BRAIN_WRITE_DAILY_LIMIT: limits ? '100000000' : '0',
  };
}

/** One server started, warmed, used and stopped; `use` gets it and its warm-up. */
async function withServer<T>(
  env: Record<string, string>,
  token: string | null,
  queries: readonly string[],
  use: (server: ServerProcess, warm: WarmResult) => Promise<T>,
): Promise<{ value: T; stop: StopResult; warm: WarmResult; warnings: string[] }> {
  const server = await startServer(env);
  let value: T;
  let warm: WarmResult;
  try {
    warm = await warmServer(server.url, token, queries);
    value = await use(server, warm);
  } catch (error) {
    await server.stop();
    throw error;
  }
  const stop = await server.stop();
  return { value, stop, warm, warnings: server.warnings() };
}

/** /metrics timed from this process while a load runs: p50/p95 ms and the body's size. */
async function scrapeMetrics(
  url: string,
  token: string,
): Promise<{ p50: number; p95: number; bytes: number }> {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const samples: number[] = [];
  let bytes = 0;
  for (let i = 0; i < SCRAPES; i++) {
    const start = performance.now();
    const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    const body = await response.text();
    samples.push(performance.now() - start);
    if (response.status !== 200)
      throw new Error(`/metrics answered ${response.status}: ${body.slice(0, 300)}`);
    bytes = Buffer.byteLength(body);
    await new Promise((resolve) => setTimeout(resolve, SCRAPE_EVERY_MS));
  }
  const s = summarize(samples);
  return { p50: s.p50, p95: s.p95, bytes };
}

/** What the measured server (auth on, limits off) did. */
interface MainRuns {
  ladder: LoadRun[];
  unthrottled: LoadRun;
  writes: LoadRun;
  overhead: LoadRun;
  scrape: { p50: number; p95: number; bytes: number };
  workers: ReturnType<ServerProcess['workers']>;
}

async function mainRuns(server: ServerProcess, token: string, queries: readonly string[]): Promise<MainRuns> {
  const recall = (rate?: number, durationS = RUN_S): LoadOptions => ({
    url: server.url,
    method: 'POST',
    path: RECALL,
    token,
    body: (n) => JSON.stringify({ query: queries[n % queries.length], k: 10 }),
    connections: CONNECTIONS,
    durationS,
    ...(rate ? { rate } : {}),
  });
  const overhead = await loadRun(recall(OVERHEAD_RATE, OVERHEAD_S));
  const unthrottled = await loadRun(recall());
  const shares = RATE_SHARES.map((f) =>
    Math.max(RATE_STEP, Math.floor((f * unthrottled.achievedRps) / RATE_STEP) * RATE_STEP),
  );
  const rates = [...new Set([...shares, SCRAPE_RATE])].sort((a, b) => a - b);
  const ladder: LoadRun[] = [];
  let scrape = { p50: Number.NaN, p95: Number.NaN, bytes: 0 };
  for (const rate of rates) {
    if (rate !== SCRAPE_RATE) {
      ladder.push(await loadRun(recall(rate)));
      continue;
    }
    const [run, scraped] = await Promise.all([loadRun(recall(rate)), scrapeMetrics(server.url, token)]);
    ladder.push(run);
    scrape = scraped;
  }
  const stamp = Date.now().toString(36);
  const writes = await loadRun({
    url: server.url,
    method: 'POST',
    path: '/v1/memories',
    token,
    body: (n) =>
      JSON.stringify({ content: `bench write ${n} (${stamp}) about rack ${n % 97} in hall ${n % 7}` }),
    connections: CONNECTIONS,
    durationS: RUN_S,
  });
  return { ladder, unthrottled, writes, overhead, scrape, workers: server.workers() };
}

/** Everything measured on one engine. */
interface EngineResult {
  engine: string;
  seedS: number;
  open: LoadRun;
  limits: LoadRun;
  main: MainRuns;
  warms: { name: string; warm: WarmResult }[];
  stops: StopResult[];
  warnings: string[];
  costs: Figure[];
}

/** Seeds 100k memories (embedded, vector index built), then runs the three servers on the store. */
async function runEngine(
  engine: string,
  engineEnv: Record<string, string>,
  corpus: ReturnType<typeof generateCorpus>,
  withCosts: boolean,
): Promise<EngineResult> {
  const home = benchHome(`http-${engine}`);
  try {
    const seedStart = performance.now();
    const seed = await openBench(home, engineEnv);
    try {
      await loadMemories(seed, corpus.memories);
      await seed.settle();
      await warmVectors(seed);
    } finally {
      await seed.close();
    }
    const seedS = (performance.now() - seedStart) / 1000;
    collectGarbage();
    const queries = corpus.queries.map((q) => q.text);
    const overheadRun = (url: string, token: string | null) =>
      loadRun({
        url,
        method: 'POST',
        path: RECALL,
        token,
        body: (n) => JSON.stringify({ query: queries[n % queries.length], k: 10 }),
        connections: CONNECTIONS,
        durationS: OVERHEAD_S,
        rate: OVERHEAD_RATE,
      });
    // Auth off first: the store holds no key yet (with none, the server serves 127.0.0.1 unauthenticated).
    const open = await withServer(serverEnv(home, engineEnv, false), null, queries, (s) =>
      overheadRun(s.url, null),
    );
    const keyed = await openBench(home, engineEnv);
    let key: string;
    let costs: Figure[] = [];
    try {
      const stores = keyed.storage.stores();
      ({ key } = await createApiKey(
        stores.apiKeys,
        { tenantId: 'default', scopes: ['read', 'write', 'admin'], name: 'http bench' },
        new Date(),
      ));
      if (withCosts) costs = await accessCosts(keyed, key, queries);
    } finally {
      await keyed.close();
    }
    const limits = await withServer(serverEnv(home, engineEnv, true), key, queries, (s) =>
      overheadRun(s.url, key),
    );
    const main = await withServer(serverEnv(home, engineEnv, false), key, queries, (s) =>
      mainRuns(s, key, queries),
    );
    const servers = { 'auth off': open, 'auth + limits': limits, 'auth, limits off': main };
    return {
      engine,
      seedS,
      open: open.value,
      limits: limits.value,
      main: main.value,
      warms: Object.entries(servers).map(([name, s]) => ({ name, warm: s.warm })),
      stops: Object.values(servers).map((s) => s.stop),
      warnings: Object.values(servers).flatMap((s) => s.warnings),
      costs,
    };
  } finally {
    removeHome(home);
  }
}

function runRow(label: string, run: LoadRun): string[] {
  const s = run.latency;
  return [
    label,
    formatNumber(run.achievedRps),
    formatNumber(s.p50),
    formatNumber(s.p95),
    formatNumber(s.p99),
    formatNumber(s.max),
    String(run.errors),
    String(run.non2xx),
  ];
}

function runsTable(r: EngineResult): string {
  const m = r.main;
  const rows = [
    ...m.ladder.map((run) =>
      runRow(`recall @ ${run.rate} req/s${run.rate === SCRAPE_RATE ? ' (+ /metrics)' : ''}`, run),
    ),
    runRow('recall unthrottled', m.unthrottled),
    runRow('remember unthrottled', m.writes),
    runRow(`recall @ ${OVERHEAD_RATE}, auth on, limits off`, m.overhead),
    runRow(`recall @ ${OVERHEAD_RATE}, auth on, limits on`, r.limits),
    runRow(`recall @ ${OVERHEAD_RATE}, auth off`, r.open),
  ];
  return formatGrid(
    `http ${r.engine}: ${CONNECTIONS} connections, ${RUN_S} s runs (${OVERHEAD_S} s at ${OVERHEAD_RATE}), latency in ms`,
    ['run', 'achieved req/s', 'p50', 'p95', 'p99', 'max', 'errors', 'non-2xx'],
    rows,
  );
}

/** The highest achieved rate of a fixed-rate run with p95 within the target and no failed request. */
function sustainedRps(ladder: readonly LoadRun[]): number {
  const ok = ladder.filter((r) => r.latency.p95 <= TARGETS.recallP95Ms && r.errors === 0 && r.non2xx === 0);
  return ok.length === 0 ? 0 : Math.max(...ok.map((r) => r.achievedRps));
}

function engineFigures(r: EngineResult): Figure[] {
  const { main: m, engine: e } = r;
  const failed = (run: LoadRun) => run.errors + run.non2xx;
  const us = (ms: number) => ms * 1000;
  const figures = [
    figure(`${e} seed ${MEMORIES / 1000}k (load, embed, index)`, r.seedS, 's'),
    figure(
      `${e} recall: highest rate with p95 <= ${TARGETS.recallP95Ms} ms, no errors`,
      sustainedRps(m.ladder),
      'req/s',
      {
        op: '>=',
        value: TARGETS.recallRps,
      },
    ),
    figure(`${e} recall unthrottled`, m.unthrottled.achievedRps, 'req/s'),
    figure(`${e} recall unthrottled p95`, m.unthrottled.latency.p95, 'ms'),
    figure(`${e} remember unthrottled`, m.writes.achievedRps, 'req/s', { op: '>=', value: TARGETS.writeRps }),
    figure(`${e} remember unthrottled p50`, m.writes.latency.p50, 'ms'),
    figure(`${e} remember unthrottled p95`, m.writes.latency.p95, 'ms'),
    figure(`${e} remember unthrottled p99`, m.writes.latency.p99, 'ms'),
    figure(`${e} remember errors + non-2xx`, failed(m.writes), 'requests', { op: '<=', value: 0 }),
  ];
  const [a, b, c] = [m.overhead.latency, r.limits.latency, r.open.latency];
  figures.push(
    figure(`${e} auth cost (auth on - off), p50`, us(a.p50 - c.p50), 'µs/req'),
    figure(`${e} auth cost (auth on - off), mean`, us(a.mean - c.mean), 'µs/req'),
    figure(`${e} rate-limit cost (limits on - off), p50`, us(b.p50 - a.p50), 'µs/req'),
    figure(`${e} rate-limit cost (limits on - off), mean`, us(b.mean - a.mean), 'µs/req'),
    figure(`${e} /metrics scrape p50 under ${SCRAPE_RATE} req/s`, m.scrape.p50, 'ms'),
    figure(`${e} /metrics scrape p95 under ${SCRAPE_RATE} req/s`, m.scrape.p95, 'ms'),
    figure(`${e} /metrics body`, m.scrape.bytes / 1024, 'KiB'),
  );
  m.workers.forEach((w, i) => {
    figures.push(figure(`${e} worker ${i + 1} RSS now (VmRSS)`, w.rss?.currentMb ?? Number.NaN, 'MB'));
    figures.push(figure(`${e} worker ${i + 1} RSS peak (VmHWM)`, w.rss?.peakMb ?? Number.NaN, 'MB'));
  });
  figures.push(figure(`${e} worker processes`, m.workers.length, 'processes', { op: '>=', value: WORKERS }));
  const worst = Math.max(...r.stops.map((s) => (s.exitCode === null ? Number.NaN : s.exitCode)));
  figures.push(
    figure(`${e} serve exit code after SIGTERM (worst of 3)`, worst, 'code', { op: '<=', value: 0 }),
  );
  figures.push(
    figure(`${e} serve stop after SIGTERM (slowest of 3)`, Math.max(...r.stops.map((s) => s.ms)) / 1000, 's'),
    figure(
      `${e} stops where the primary killed its workers`,
      r.stops.filter((s) => s.workersKilled).length,
      'of 3',
      {
        op: '<=',
        value: 0,
      },
    ),
  );
  return figures;
}

/** Server log lines at warn and above, one line per message with how often it came. */
function groupWarnings(lines: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) {
    let message = line.slice(0, 200);
    try {
      const entry = JSON.parse(line) as { msg?: string; sql?: string };
      message = entry.sql ? `${entry.msg}: ${entry.sql.slice(0, 120)}…` : (entry.msg ?? message);
    } catch {
      // Not a pino line (a Node warning): kept as printed.
    }
    counts.set(message, (counts.get(message) ?? 0) + 1);
  }
  return [...counts].map(([message, n]) => `${n}× ${message}`);
}

function printEngine(r: EngineResult): Figure[] {
  console.log(runsTable(r));
  console.log(
    `warm-up (recall until the ANN index answers and p50 settles): ${r.warms
      .map(
        (w) =>
          `${w.name} ${w.warm.requests} requests in ${(w.warm.ms / 1000).toFixed(1)} s, p50 ${formatNumber(w.warm.p50)} ms`,
      )
      .join('; ')}`,
  );
  const warnings = groupWarnings(r.warnings);
  if (warnings.length > 0)
    console.log(`server warnings and errors (all servers):\n  ${warnings.join('\n  ')}`);
  const figures = engineFigures(r);
  console.log(formatTable(`http ${r.engine}`, figures));
  if (r.costs.length > 0) console.log(formatTable('access layer, in-process tight loop', r.costs));
  return [...figures, ...r.costs];
}

export async function printHttpBench(): Promise<Figure[]> {
  console.log(
    `http: brain serve with BRAIN_WORKERS=${WORKERS} (node:cluster: one Node process uses one core; this machine has ${os.cpus().length}), ` +
      `auth on (an API key), limits off unless named, stateless MCP; autocannon in the bench process on the same cores, ` +
      `${CONNECTIONS} connections; a fixed rate is split over 8 autocannon instances started 125 ms apart ` +
      `(each connection sends its per-second quota back to back); p50/p95/p99 from every response's time; ` +
      `fixed rates at ${RATE_SHARES.join(', ')} of the unthrottled throughput and at ${SCRAPE_RATE} req/s.`,
  );
  const corpus = generateCorpus(MEMORIES, QUERIES, 42);
  const figures: Figure[] = [];
  // BENCH_HTTP_ENGINES=postgres (or sqlite) runs one engine; both by default.
  const engines = (process.env.BENCH_HTTP_ENGINES ?? 'sqlite,postgres').split(',');
  if (engines.includes('sqlite')) figures.push(...printEngine(await runEngine('sqlite', {}, corpus, true)));
  if (!engines.includes('postgres')) return figures;
  const missing = postgresUnavailable();
  if (missing) {
    console.log(`postgres skipped: ${missing} (run scripts/install-services.sh as root)`);
    figures.push(figure(`postgres not run: ${missing}`, Number.NaN, '', { op: '>=', value: 0 }));
    return figures;
  }
  const cluster: LocalPostgres = await startLocalPostgres({ durable: true });
  try {
    const env = { BRAIN_DATABASE_URL: createTestDatabase(cluster.baseUrl, 'http') };
    figures.push(...printEngine(await runEngine('postgres', env, corpus, false)));
  } finally {
    cluster.stop();
  }
  return figures;
}
