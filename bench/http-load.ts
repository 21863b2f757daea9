/**
 * HTTP load for the HTTP bench: autocannon runs (fixed-rate or unthrottled) whose every response time
 * is recorded (autocannon reports p97.5 and p99 but no p95, and corrects its histogram for coordinated
 * omission at a 1 ms interval under a rate, which inflates it), and the warm-up of a fresh server.
 */
import autocannon from 'autocannon';
import { type LatencySummary, summarize } from './stats.js';

/**
 * A fixed rate is split over this many autocannon instances started 1/PHASES s apart. autocannon paces
 * by a per-second quota per connection: each connection sends back to back until its quota is spent,
 * then waits for the next second, so one instance's connections all burst together at the top of each
 * second. Staggered instances spread those bursts over the second, closer to a steady arrival rate
 * (measured at 200 req/s on 100k memories, 16 connections: p50 25 ms in one instance, 5.7 ms in 4,
 * 2.9 ms in 8, 2.2 ms for one connection back to back).
 */
const PHASES = 8;

/** One load run. */
export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  path: string;
  /** Bearer credential; none: no Authorization header. */
  token?: string | null;
  /** The body of the n-th request of the run (counted over every connection). */
  body?: (n: number) => string;
  connections: number;
  durationS: number;
  /** Requests per second over all connections; none: unthrottled (each connection back to back). */
  rate?: number;
  /** Staggered autocannon instances a rate is split over (default {@link PHASES}). */
  phases?: number;
}

/** What one run did: response times are autocannon's (request written to response parsed), in ms. */
export interface LoadRun {
  rate: number | null;
  /** Responses per second over the run. */
  achievedRps: number;
  responses: number;
  latency: LatencySummary;
  /** Connection errors and timeouts (autocannon's `errors` counts both). */
  errors: number;
  non2xx: number;
  statusCodes: Record<string, number>;
}

interface PhaseResult {
  result: autocannon.Result;
  samples: number[];
  codes: Map<number, number>;
}

function runPhase(options: LoadOptions, connections: number, rate: number | undefined, next: () => number) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const samples: number[] = [];
  const codes = new Map<number, number>();
  const body = options.body;
  return new Promise<PhaseResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections,
        duration: options.durationS,
        ...(rate ? { overallRate: rate } : {}),
        requests: [
          {
            method: options.method,
            path: options.path,
            headers,
            ...(body
              ? {
                  setupRequest: (request: autocannon.Request) => {
                    request.body = body(next());
                    return request;
                  },
                }
              : {}),
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve({ result, samples, codes })),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      samples.push(responseTime);
      codes.set(statusCode, (codes.get(statusCode) ?? 0) + 1);
    });
  });
}

/** Runs autocannon (in {@link PHASES} staggered instances under a rate) and summarises every response. */
export async function loadRun(options: LoadOptions): Promise<LoadRun> {
  let n = 0;
  const next = () => n++;
  const wanted = options.phases ?? PHASES;
  const phases = options.rate && options.connections >= wanted ? wanted : 1;
  const runs = await Promise.all(
    Array.from({ length: phases }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, (i * 1000) / phases));
      const connections = Math.floor(options.connections / phases);
      // autocannon shares a rate out over connections in whole requests per second.
      return runPhase(
        options,
        connections,
        options.rate ? Math.round(options.rate / phases) : undefined,
        next,
      );
    }),
  );
  const samples = runs.flatMap((r) => r.samples);
  const statusCodes: Record<string, number> = {};
  for (const run of runs)
    for (const [code, count] of run.codes) statusCodes[code] = (statusCodes[code] ?? 0) + count;
  const sum = (f: (r: autocannon.Result) => number) => runs.reduce((s, r) => s + f(r.result), 0);
  return {
    rate: options.rate ?? null,
    // Each phase runs its own full duration: the rates add up.
    achievedRps: runs.reduce((s, r) => s + r.samples.length / r.result.duration, 0),
    responses: samples.length,
    latency: summarize(samples),
    errors: sum((r) => r.errors),
    non2xx: sum((r) => r.non2xx),
    statusCodes,
  };
}

/** What recall said of its vector stage (`exact` while a SQLite worker's ANN index is not loaded yet). */
interface RecallAnswer {
  ms: number;
  vectorSearch: string;
}

async function recallOnce(url: string, token: string | null, query: string): Promise<RecallAnswer> {
  const start = performance.now();
  const response = await fetch(`${url}/v1/memories/search`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, k: 10 }),
  });
  const text = await response.text();
  const ms = performance.now() - start;
  if (response.status !== 200) throw new Error(`recall answered ${response.status}: ${text.slice(0, 500)}`);
  return { ms, vectorSearch: (JSON.parse(text) as { vector_search?: string }).vector_search ?? 'none' };
}

/** What warming a server took. */
export interface WarmResult {
  requests: number;
  ms: number;
  /** p50 of the last round, ms. */
  p50: number;
}

const WARM_ROUND = 200;
const WARM_MIN = 2000;
const WARM_CONCURRENCY = 8;
/** Rounds compared: the last WINDOW rounds' median p50 against the WINDOW rounds before them. */
const WARM_WINDOW = 3;
const WARM_TIMEOUT_MS = 60_000;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * Warms a fresh server: recall in rounds of {@link WARM_ROUND} (8 at a time) until at least
 * {@link WARM_MIN} were sent, every answer of the last round came from the ANN index (or a store with
 * no index of its own), and p50 stopped improving: the median p50 of the last 3 rounds within 5% of
 * the 3 before. The workers load their vector index at start (recall scans exactly until then), and on
 * 100,000 memories a fresh worker takes a few thousand requests (JIT, page cache) to reach its pace.
 */
export async function warmServer(
  url: string,
  token: string | null,
  queries: readonly string[],
): Promise<WarmResult> {
  const start = performance.now();
  let sent = 0;
  const p50s: number[] = [];
  for (;;) {
    const answers: RecallAnswer[] = [];
    let launched = 0;
    await Promise.all(
      Array.from({ length: WARM_CONCURRENCY }, async () => {
        while (launched++ < WARM_ROUND)
          answers.push(await recallOnce(url, token, queries[sent++ % queries.length] as string));
      }),
    );
    p50s.push(summarize(answers.map((a) => a.ms)).p50);
    const indexed = answers.every((a) => a.vectorSearch !== 'exact');
    const last = median(p50s.slice(-WARM_WINDOW));
    const before = median(p50s.slice(-2 * WARM_WINDOW, -WARM_WINDOW));
    const settled = p50s.length >= 2 * WARM_WINDOW && last >= before * 0.95;
    const ms = performance.now() - start;
    if ((sent >= WARM_MIN && indexed && settled) || ms > WARM_TIMEOUT_MS)
      return { requests: sent, ms, p50: last };
  }
}
