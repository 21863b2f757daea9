import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBrain } from '../../src/app/build-brain.js';
import { loadConfig, requireValidConfig } from '../../src/config/load-config.js';
import { BRAIN_BIN, brainEnv, runBrain, tempHome } from './brain-process.js';

const homes: string[] = [];
afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

function newHome(): string {
  const dir = tempHome('brain-mcp-e2e-');
  homes.push(dir);
  return dir;
}

/** An MCP client connected to a freshly spawned `brain mcp`, the way a desktop client starts it. */
async function connect(
  env: Record<string, string>,
): Promise<{ client: Client; transport: StdioClientTransport }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BRAIN_BIN, 'mcp'],
    env: brainEnv(env) as Record<string, string>,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'e2e', version: '0.0.0' });
  await client.connect(transport);
  return { client, transport };
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

async function totalIn(env: Record<string, string>): Promise<number> {
  const result = await runBrain(['list', '--json', '--limit', '1'], env);
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { total: number }).total;
}

describe('brain mcp over stdio (official SDK client)', () => {
  it('lists the seven tools and remembers, recalls and forgets', async () => {
    const env = { BRAIN_HOME: newHome() };
    const { client } = await connect(env);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        'forget',
        'get_memory',
        'init',
        'list_memories',
        'recall',
        'remember',
        'update_memory',
      ]);
      for (const tool of tools) {
        expect(tool.outputSchema, tool.name).toBeDefined();
        expect(tool.annotations?.readOnlyHint, tool.name).toBeTypeOf('boolean');
      }
      const init = await call(client, 'init', { project: 'e2e' });
      expect(init.isError).toBeFalsy();
      const saved = await call(client, 'remember', {
        content: 'The release train leaves every second Thursday',
        project: 'e2e',
      });
      const id = (saved.structuredContent as { id: string }).id;
      const found = await call(client, 'recall', { query: 'when does the release train leave', k: 3 });
      expect((found.structuredContent as { hits: { id: string }[] }).hits[0]?.id).toBe(id);
      const text = found.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
      expect(text).toContain('The release train leaves every second Thursday');
      const bad = await call(client, 'recall', { query: 'x', k: 1000 });
      expect(bad.isError).toBe(true);
      expect(bad.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n')).toMatch(
        /must be from 1 to 100 at k|k: must be from 1 to 100/,
      );
      const gone = await call(client, 'forget', { id });
      expect(gone.structuredContent).toMatchObject({ forgotten: 1 });
    } finally {
      await client.close();
    }
  });

  it('writes nothing but JSON-RPC to stdout, even with debug logging', async () => {
    const dir = newHome();
    const child = spawn(process.execPath, [BRAIN_BIN, 'mcp'], {
      env: brainEnv({ BRAIN_HOME: dir, LOG_LEVEL: 'debug' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
    });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'remember', arguments: { content: 'raw stdio' } },
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (stdout.includes('"id":2')) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    child.stdin.end();
    expect(await exited).toBe(0);
    const lines = stdout.split('\n').filter((l) => l.length > 0);
    expect(lines.length).toBe(2);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
    expect(stderr).toMatch(/brain mcp ready on stdio/);
    expect(await totalIn({ BRAIN_HOME: dir })).toBe(1);
  });

  it('two brain mcp processes writing one database at once lose no acknowledged write', async () => {
    const env = { BRAIN_HOME: newHome() };
    const [a, b] = await Promise.all([connect(env), connect(env)]);
    const perClient = 150;
    const write = async (client: Client, who: string) => {
      const ids: string[] = [];
      for (let i = 0; i < perClient; i++) {
        const result = await call(client, 'remember', {
          content: `${who} wrote note number ${i}`,
          tags: [who],
        });
        expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
        ids.push((result.structuredContent as { id: string }).id);
      }
      return ids;
    };
    try {
      const [idsA, idsB] = await Promise.all([write(a.client, 'alpha'), write(b.client, 'beta')]);
      expect(new Set([...idsA, ...idsB]).size).toBe(2 * perClient);
      // Each process sees the other's writes while both are running.
      const seen = await call(a.client, 'list_memories', { tags: ['beta'], limit: 1 });
      expect((seen.structuredContent as { total: number }).total).toBe(perClient);
    } finally {
      await a.client.close();
      await b.client.close();
    }
    expect(await totalIn(env)).toBe(2 * perClient);
  });

  it('an acknowledged write survives kill -9 of the server', async () => {
    const env = { BRAIN_HOME: newHome() };
    const { client, transport } = await connect(env);
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const result = await call(client, 'remember', { content: `durable fact ${i}` });
      ids.push((result.structuredContent as { id: string }).id);
    }
    const pid = transport.pid;
    expect(pid).toBeTypeOf('number');
    process.kill(pid as number, 'SIGKILL');
    await client.close().catch(() => undefined);
    // The WAL file may hold the writes uncheckpointed: the next process must still see them all.
    expect(await totalIn(env)).toBe(50);
    const last = await runBrain(['get', ids.at(-1) as string, '--json'], env);
    expect(JSON.parse(last.stdout)).toMatchObject({ content: 'durable fact 49' });
    expect(fs.existsSync(path.join(env.BRAIN_HOME, 'data', 'brain.db'))).toBe(true);
  });

  it('a restarted server loads the vector index its predecessor saved instead of rebuilding it', async () => {
    const env = { BRAIN_HOME: newHome() };
    // 1,200 memories: past the 1,000 at which a tenant gets an HNSW index. Loaded in-process, quickly.
    const config = requireValidConfig(loadConfig({ env: brainEnv(env), cwd: env.BRAIN_HOME }));
    const loader = await buildBrain(config, { logger: pino({ level: 'silent' }), prepareVectors: false });
    for (let start = 0; start < 1200; start += 600) {
      const items = Array.from({ length: 600 }, (_, i) => ({
        content: `indexed fact ${start + i} about topic ${(start + i) % 37}`,
      }));
      await loader.services.memory.rememberMany(loader.scope, items);
    }
    await loader.close();
    const recallMode = async (client: Client) => {
      const result = await call(client, 'recall', { query: 'fact about topic 5', k: 3 });
      expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
      return (result.structuredContent as { vector_search: string }).vector_search;
    };

    const first = await connect(env);
    const deadline = Date.now() + 60_000;
    while ((await recallMode(first.client)) !== 'approximate') {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await first.client.close(); // stdin closes; the server drains, saves the index and exits
    const vectorsDir = path.join(env.BRAIN_HOME, 'data', 'brain.db.vectors');
    expect(fs.readdirSync(vectorsDir).filter((f) => f.endsWith('.usearch'))).toHaveLength(1);

    const second = await connect(env);
    let stderr = '';
    second.transport.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // The first recall already runs on the loaded index: no background build to wait for.
    expect(await recallMode(second.client)).toBe('approximate');
    await second.client.close();
    expect(stderr).toContain('vector index loaded from disk');
  });
});
