/**
 * `npm run bench -- mcp`: recall over MCP stdio with the official SDK client, against the official MCP
 * memory server (`@modelcontextprotocol/server-memory`, its `search_nodes`) holding the same memories,
 * at 1,000 and 10,000. Both servers are separate processes spawned the way a desktop client spawns them.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { benchEnv, benchHome, loadMemories, openBench, removeHome } from './bench-brain.js';
import { type CorpusMemory, generateCorpus } from './corpus.js';
import {
  type Figure,
  figure,
  formatGrid,
  formatNumber,
  formatTable,
  type LatencySummary,
  summarize,
} from './stats.js';

const QUERIES = 500;
const WARMUP = 30;
/** The built `brain`, from bench/ (vite-node) or dist-bench/bench/ (npm run bench). */
const BRAIN_BIN = path.resolve(
  import.meta.dirname,
  import.meta.dirname.includes('dist-bench') ? '../..' : '..',
  'dist/app/cli-main.js',
);
const PEER_BIN = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-memory/dist/index.js');

async function connect(command: string, args: string[], env: Record<string, string>): Promise<Client> {
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
  return client;
}

/** Times one tool call per query, after a warm-up, awaiting each answer. */
async function timeTool(
  client: Client,
  tool: string,
  args: (query: string) => Record<string, unknown>,
  queries: string[],
) {
  for (const q of queries.slice(0, WARMUP)) await client.callTool({ name: tool, arguments: args(q) });
  const samples: number[] = [];
  for (const q of queries.slice(WARMUP)) {
    const start = performance.now();
    const result = (await client.callTool({ name: tool, arguments: args(q) })) as CallToolResult;
    samples.push(performance.now() - start);
    if (result.isError) throw new Error(`${tool} failed: ${JSON.stringify(result.content)}`);
  }
  return summarize(samples);
}

async function brainOverMcp(memories: readonly CorpusMemory[], queries: string[]): Promise<LatencySummary> {
  const home = benchHome('mcp-brain');
  try {
    const brain = await openBench(home);
    await loadMemories(brain, memories);
    await brain.close();
    const client = await connect(process.execPath, [BRAIN_BIN, 'mcp'], benchEnv(home));
    try {
      return await timeTool(client, 'recall', (query) => ({ query, k: 10 }), queries);
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

async function peerOverMcp(memories: readonly CorpusMemory[], queries: string[]): Promise<LatencySummary> {
  const home = benchHome('mcp-peer');
  try {
    const file = path.join(home, 'memory.jsonl');
    writePeerGraph(file, memories);
    const client = await connect(process.execPath, [PEER_BIN], { MEMORY_FILE_PATH: file });
    try {
      return await timeTool(client, 'search_nodes', (query) => ({ query }), queries);
    } finally {
      await client.close();
    }
  } finally {
    removeHome(home);
  }
}

export async function runMcpBench(sizes = [1000, 10_000]): Promise<{ figures: Figure[]; table: string }> {
  const figures: Figure[] = [];
  const rows: string[][] = [];
  for (const size of sizes) {
    const corpus = generateCorpus(size, QUERIES + WARMUP, 11);
    const queries = corpus.queries.map((q) => q.text);
    const brain = await brainOverMcp(corpus.memories, queries);
    const peer = await peerOverMcp(corpus.memories, queries);
    for (const [name, s] of [
      ['brain recall', brain],
      ['server-memory search_nodes', peer],
    ] as const) {
      rows.push([
        `${name} @ ${size}`,
        formatNumber(s.p50),
        formatNumber(s.p95),
        formatNumber(s.p99),
        formatNumber(s.opsPerSecond),
      ]);
    }
    rows.push([
      `ratio peer/brain @ ${size}`,
      `${formatNumber(peer.p50 / brain.p50)}x`,
      `${formatNumber(peer.p95 / brain.p95)}x`,
      `${formatNumber(peer.p99 / brain.p99)}x`,
      '',
    ]);
    const target = size === 10_000 ? { op: '<=' as const, value: 5 } : undefined;
    figures.push(figure(`brain MCP recall p50 @ ${size}`, brain.p50, 'ms'));
    figures.push(figure(`brain MCP recall p95 @ ${size}`, brain.p95, 'ms', target));
    figures.push(figure(`peer search_nodes p50 @ ${size}`, peer.p50, 'ms'));
    figures.push(figure(`peer/brain p50 ratio @ ${size}`, peer.p50 / brain.p50, 'x'));
  }
  const table = formatGrid(
    `MCP stdio, official SDK client, ${QUERIES} queries after ${WARMUP} warm-up (ms)`,
    ['server @ memories', 'p50', 'p95', 'p99', 'calls/s'],
    rows,
  );
  return { figures, table };
}

export async function printMcpBench(): Promise<Figure[]> {
  const { figures, table } = await runMcpBench();
  console.log(table);
  console.log(formatTable('MCP stdio targets', figures));
  return figures;
}
