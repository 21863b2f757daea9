/**
 * `npm run bench -- mcp`: recall over MCP stdio with the official SDK client, against the official MCP
 * memory server (`@modelcontextprotocol/server-memory`, its `search_nodes`) holding the same memories,
 * at 1,000 and 10,000, with the same queries. Both servers are separate processes spawned the way a
 * desktop client spawns them; each call is timed from the client, round trip included. Brain gets its
 * memories by one `remember` call each over stdio and is timed right after the last one (after the
 * set's warm-up calls, without waiting for its vector index), then again once the index answers.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DEFAULT_VECTOR_SEARCH_OPTIONS } from '../src/storage/sqlite/sqlite-vector-search.js';
import { benchEnv, benchHome, PROJECT, removeHome } from './bench-brain.js';
import { type CorpusMemory, generateCorpus } from './corpus.js';
import {
  type Figure,
  figure,
  formatGrid,
  formatNumber,
  formatTable,
  type LatencySummary,
  parseProcStatus,
  type RssFigures,
  summarize,
} from './stats.js';

/** The recall bench's mix (keywords and paraphrases): the target figures. */
const QUERIES = 1000;
const WARMUP = 50;
/** One word of the target memory: what the peer's substring search is built for. */
const WORD_QUERIES = 300;
const WORD_WARMUP = 20;
/** How long the bench waits for the vector index before timing the after-index phase anyway. */
const INDEX_WAIT_MS = 120_000;
/** The built `brain`, from bench/ (vite-node) or dist-bench/bench/ (npm run bench). */
export const BRAIN_BIN = path.resolve(
  import.meta.dirname,
  import.meta.dirname.includes('dist-bench') ? '../..' : '..',
  'dist/app/cli-main.js',
);
export const PEER_BIN = createRequire(import.meta.url).resolve(
  '@modelcontextprotocol/server-memory/dist/index.js',
);

export interface Connection {
  client: Client;
  pid: number | null;
}

export async function connect(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<Connection> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const transport = new StdioClientTransport({
    command,
    args,
    env: { ...inherited, ...env },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'brain-bench', version: '0.0.0' });
  await client.connect(transport);
  return { client, pid: transport.pid };
}

/** A server process's RSS (current and peak), read from /proc; null off Linux. */
function serverRss(pid: number | null): RssFigures | null {
  if (pid === null) return null;
  try {
    return parseProcStatus(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return null;
  }
}

/** Queries timed together: a name for the table, the queries, and how many of them warm up. */
interface QuerySet {
  name: string;
  queries: string[];
  warmup: number;
}

/** What one server did with one query set. */
interface SetRun {
  latency: LatencySummary;
  /** Share of timed calls that returned at least one memory or entity. */
  answered: number;
  /** Brain only: share of timed calls served by the ANN index. */
  approximate?: number;
}

/** What one server process did with every query set, and its RSS afterwards. */
interface ServerRun {
  sets: SetRun[];
  rss: RssFigures | null;
}

/** Brain's run: `sets` timed right after the import, `afterIndex` once the ANN index answered. */
interface BrainRun extends ServerRun {
  afterIndex: SetRun[];
  /** How long after the first post-import timings the ANN index answered (NaN: never built). */
  indexReadyMs: number;
  /** remember calls per second over stdio during the import. */
  rememberPerSecond: number;
}

async function call(client: Client, tool: string, args: Record<string, unknown>): Promise<CallToolResult> {
  const result = (await client.callTool({ name: tool, arguments: args })) as CallToolResult;
  if (result.isError) throw new Error(`${tool} failed: ${JSON.stringify(result.content)}`);
  return result;
}

/** Times one tool call per query after the set's warm-up, awaiting each answer. */
async function timeTool(
  client: Client,
  tool: string,
  args: (query: string) => Record<string, unknown>,
  set: QuerySet,
): Promise<{ latency: LatencySummary; results: CallToolResult[] }> {
  for (const q of set.queries.slice(0, set.warmup)) await call(client, tool, args(q));
  const samples: number[] = [];
  const results: CallToolResult[] = [];
  for (const q of set.queries.slice(set.warmup)) {
    const start = performance.now();
    const result = await call(client, tool, args(q));
    samples.push(performance.now() - start);
    results.push(result);
  }
  return { latency: summarize(samples), results };
}

function share<T>(items: readonly T[], test: (item: T) => boolean): number {
  return items.filter(test).length / Math.max(1, items.length);
}

function structured(result: CallToolResult): { vector_search?: unknown; hits?: unknown[] } {
  return (result.structuredContent ?? {}) as { vector_search?: unknown; hits?: unknown[] };
}

/**
 * Polls recall until the ANN index answers; returns how long that took after `since` (NaN: it did not
 * within INDEX_WAIT_MS).
 */
async function waitForIndex(client: Client, query: string, since: number): Promise<number> {
  for (;;) {
    const result = await call(client, 'recall', { query, k: 10 });
    if (structured(result).vector_search === 'approximate') return performance.now() - since;
    if (performance.now() - since > INDEX_WAIT_MS) return Number.NaN;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Times every query set with recall, as one phase of a Brain run. */
async function timeRecall(client: Client, sets: readonly QuerySet[]): Promise<SetRun[]> {
  const runs: SetRun[] = [];
  for (const set of sets) {
    const { latency, results } = await timeTool(client, 'recall', (query) => ({ query, k: 10 }), set);
    runs.push({
      latency,
      answered: share(results, (r) => (structured(r).hits?.length ?? 0) > 0),
      approximate: share(results, (r) => structured(r).vector_search === 'approximate'),
    });
  }
  return runs;
}

/**
 * The scenario: a fresh Brain over stdio gets every memory by one `remember` call each, and is
 * timed IMMEDIATELY after the last one (while its vector index may still be catching up in the worker),
 * then again once the index answers.
 */
async function brainOverMcp(memories: readonly CorpusMemory[], sets: readonly QuerySet[]): Promise<BrainRun> {
  const home = benchHome('mcp-brain');
  try {
    const { client, pid } = await connect(process.execPath, [BRAIN_BIN, 'mcp'], benchEnv(home));
    try {
      const ids = new Set<string>();
      const importStart = performance.now();
      for (const m of memories) {
        const result = await call(client, 'remember', { content: m.content, project: PROJECT });
        ids.add((result.structuredContent as { id: string }).id);
      }
      const importMs = performance.now() - importStart;
      const afterImport = await timeRecall(client, sets);
      // Duplicates collapse into one memory; below the threshold the index is never built.
      const indexed = ids.size >= DEFAULT_VECTOR_SEARCH_OPTIONS.annMinVectors;
      const readyAt = performance.now();
      const indexReadyMs = indexed
        ? await waitForIndex(client, sets[0]?.queries[0] ?? 'memory', readyAt)
        : Number.NaN;
      const afterIndex = await timeRecall(client, sets);
      return {
        sets: afterImport,
        afterIndex,
        rss: serverRss(pid),
        indexReadyMs,
        rememberPerSecond: (memories.length * 1000) / importMs,
      };
    } finally {
      await client.close();
    }
  } finally {
    removeHome(home);
  }
}

/** The peer's own file format: one JSON entity per line, as its saveGraph writes it. */
function writePeerGraph(file: string, memories: readonly CorpusMemory[]): void {
  const lines = memories.map((m, i) =>
    JSON.stringify({ type: 'entity', name: `memory-${i}`, entityType: 'memory', observations: [m.content] }),
  );
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/** Whether a search_nodes answer (its graph as JSON text) holds any entity. */
function peerAnswered(result: CallToolResult): boolean {
  const first = result.content[0];
  if (first?.type !== 'text') return false;
  try {
    return ((JSON.parse(first.text) as { entities?: unknown[] }).entities?.length ?? 0) > 0;
  } catch {
    return false;
  }
}

async function peerOverMcp(memories: readonly CorpusMemory[], sets: readonly QuerySet[]): Promise<ServerRun> {
  const home = benchHome('mcp-peer');
  try {
    const file = path.join(home, 'memory.jsonl');
    writePeerGraph(file, memories);
    const { client, pid } = await connect(process.execPath, [PEER_BIN], { MEMORY_FILE_PATH: file });
    try {
      const runs: SetRun[] = [];
      for (const set of sets) {
        const { latency, results } = await timeTool(client, 'search_nodes', (query) => ({ query }), set);
        runs.push({ latency, answered: share(results, peerAnswered) });
      }
      return { sets: runs, rss: serverRss(pid) };
    } finally {
      await client.close();
    }
  } finally {
    removeHome(home);
  }
}

/** The two query sets for one corpus: the recall bench's mix, and one word of each target. */
function querySets(corpus: ReturnType<typeof generateCorpus>): QuerySet[] {
  const word = (target: number) => corpus.memories[target]?.keywords.split(' ')[0] ?? 'memory';
  return [
    { name: 'keywords + paraphrases', queries: corpus.queries.map((q) => q.text), warmup: WARMUP },
    {
      name: 'one word',
      queries: corpus.queries.slice(0, WORD_QUERIES + WORD_WARMUP).map((q) => word(q.target)),
      warmup: WORD_WARMUP,
    },
  ];
}

function row(label: string, run: SetRun, rss: RssFigures | null): string[] {
  const s = run.latency;
  return [
    label,
    formatNumber(s.p50),
    formatNumber(s.p95),
    formatNumber(s.p99),
    formatNumber(s.opsPerSecond),
    formatNumber(run.answered),
    rss ? formatNumber(rss.peakMb) : '?',
  ];
}

function ratioRow(label: string, peer: LatencySummary, brain: LatencySummary): string[] {
  const ratio = (f: (s: LatencySummary) => number) => `${formatNumber(f(peer) / f(brain))}x`;
  return [label, ratio((s) => s.p50), ratio((s) => s.p95), ratio((s) => s.p99), '', '', ''];
}

export async function runMcpBench(sizes = [1000, 10_000]): Promise<{ figures: Figure[]; table: string }> {
  const figures: Figure[] = [];
  const rows: string[][] = [];
  for (const size of sizes) {
    const corpus = generateCorpus(size, QUERIES + WARMUP, 11);
    const sets = querySets(corpus);
    const brain = await brainOverMcp(corpus.memories, sets);
    const peer = await peerOverMcp(corpus.memories, sets);
    sets.forEach((set, i) => {
      const b = brain.sets[i] as SetRun;
      const bi = brain.afterIndex[i] as SetRun;
      const p = peer.sets[i] as SetRun;
      const at = `@ ${formatNumber(size)}, ${set.name}`;
      rows.push(
        row(`brain recall right after import ${at}`, b, brain.rss),
        row(`brain recall, index ready ${at}`, bi, brain.rss),
        row(`server-memory search_nodes ${at}`, p, peer.rss),
        ratioRow(`ratio peer/brain (after import) ${at}`, p.latency, b.latency),
      );
    });
    const main = {
      brain: brain.sets[0] as SetRun,
      indexed: brain.afterIndex[0] as SetRun,
      peer: peer.sets[0] as SetRun,
    };
    const target = size === 10_000 ? { op: '<=' as const, value: 5 } : undefined;
    figures.push(
      figure(`brain remember over stdio @ ${size}`, brain.rememberPerSecond, 'calls/s'),
      figure(`brain MCP recall p50 right after import @ ${size}`, main.brain.latency.p50, 'ms'),
      figure(`brain MCP recall p95 right after import @ ${size}`, main.brain.latency.p95, 'ms', target),
      figure(`brain MCP recall p99 right after import @ ${size}`, main.brain.latency.p99, 'ms'),
      figure(
        `brain calls served by the ANN index after import @ ${size}`,
        main.brain.approximate ?? Number.NaN,
        'share',
      ),
      figure(`brain index answering after the import's timings @ ${size}`, brain.indexReadyMs / 1000, 's'),
      figure(`brain MCP recall p50, index ready @ ${size}`, main.indexed.latency.p50, 'ms'),
      figure(`brain MCP recall p95, index ready @ ${size}`, main.indexed.latency.p95, 'ms', target),
      figure(`brain MCP recall p99, index ready @ ${size}`, main.indexed.latency.p99, 'ms'),
      figure(`brain server peak RSS @ ${size}`, brain.rss?.peakMb ?? Number.NaN, 'MB'),
      figure(`peer search_nodes p50 @ ${size}`, main.peer.latency.p50, 'ms'),
      figure(`peer search_nodes p95 @ ${size}`, main.peer.latency.p95, 'ms'),
      figure(`peer server peak RSS @ ${size}`, peer.rss?.peakMb ?? Number.NaN, 'MB'),
      figure(`peer/brain p50 ratio @ ${size}`, main.peer.latency.p50 / main.brain.latency.p50, 'x'),
      figure(`peer/brain p95 ratio @ ${size}`, main.peer.latency.p95 / main.brain.latency.p95, 'x'),
    );
  }
  const table = formatGrid(
    `MCP stdio, official SDK client; ${QUERIES} mixed queries after ${WARMUP} warm-up, ${WORD_QUERIES} one-word after ${WORD_WARMUP} (latency in ms)`,
    ['server @ memories, queries', 'p50', 'p95', 'p99', 'calls/s', 'answered', 'peak RSS MB'],
    rows,
  );
  return { figures, table };
}

export async function printMcpBench(): Promise<Figure[]> {
  const { figures, table } = await runMcpBench();
  console.log(table);
  console.log(
    'answered: share of queries with at least one result. search_nodes matches the whole query as one\n' +
      'case-insensitive substring, so multi-word queries find nothing and one word finds every entity holding it.',
  );
  console.log(formatTable('MCP stdio targets (keywords + paraphrases)', figures));
  return figures;
}
