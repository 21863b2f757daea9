import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { type CallToolResult, McpError } from '@modelcontextprotocol/sdk/types.js';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBrain } from '../../src/app/build-brain.js';
import { loadConfig, requireValidConfig } from '../../src/config/load-config.js';
import { MCP_TOOL_NAMES } from '../mcp-tool-names.js';
import { initializeBody } from '../test-http.js';
import { BRAIN_BIN, brainEnv, runBrain, spawnRawMcp, tempHome } from './brain-process.js';

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
  cwd?: string,
): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BRAIN_BIN, 'mcp'],
    env: brainEnv(env) as Record<string, string>,
    stderr: 'pipe',
    ...(cwd ? { cwd } : {}),
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const client = new Client({ name: 'e2e', version: '0.0.0' });
  await client.connect(transport);
  return { client, transport, stderr: () => stderr };
}

/** Waits until `check` holds, polling: for output of a child process. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** The pino lines of a log stream that parse, for asserting on level and message. */
function logLines(text: string): { level: number; msg: string }[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string });
}

const TWELVE_MIB = 12 * 1024 * 1024;

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

async function totalIn(env: Record<string, string>): Promise<number> {
  const result = await runBrain(['list', '--json', '--limit', '1'], env);
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { total: number }).total;
}

describe('brain mcp over stdio (official SDK client)', () => {
  it('lists every tool and remembers, recalls and forgets', async () => {
    const env = { BRAIN_HOME: newHome() };
    const { client } = await connect(env);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(MCP_TOOL_NAMES);
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
    const raw = spawnRawMcp({ BRAIN_HOME: dir, LOG_LEVEL: 'debug' });
    const send = (message: object) => raw.sendLine(JSON.stringify(message));
    send(initializeBody('raw'));
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'remember', arguments: { content: 'raw stdio' } },
    });
    await until(() => raw.stdout().includes('"id":2'));
    raw.child.stdin?.end();
    expect(await raw.exited).toBe(0);
    const lines = raw
      .stdout()
      .split('\n')
      .filter((l) => l.length > 0);
    expect(lines.length).toBe(2);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
    expect(raw.stderr()).toMatch(/brain mcp ready on stdio/);
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
    // The worker loads the saved index (seconds sooner than a rebuild); recall answers exactly meanwhile.
    const loadDeadline = Date.now() + 20_000;
    while ((await recallMode(second.client)) !== 'approximate') {
      expect(Date.now()).toBeLessThan(loadDeadline);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await second.client.close();
    expect(second.stderr()).toContain('vector index loaded from disk');
  });
  it('answers a 12 MiB message with a JSON-RPC error naming the limit, logs it, and keeps serving', async () => {
    const { client, stderr } = await connect({ BRAIN_HOME: newHome() });
    try {
      // The SDK client writes the id last; the server finds it in the line's last bytes.
      const error = await call(client, 'remember', { content: 'x'.repeat(TWELVE_MIB) }).catch((e) => e);
      expect(error).toBeInstanceOf(McpError);
      expect((error as McpError).code).toBe(-32600);
      expect((error as McpError).message).toMatch(/over the limit of 4194304 bytes \(4 MiB\)/);
      const { tools } = await client.listTools();
      expect(tools).toHaveLength(MCP_TOOL_NAMES.length);
      const saved = await call(client, 'remember', { content: 'still serving after the oversize line' });
      expect(saved.isError).toBeFalsy();
      await until(() => stderr().includes('over the 4194304-byte limit'));
      expect(logLines(stderr()).find((l) => l.msg.includes('over the 4194304-byte limit'))?.level).toBe(40);
    } finally {
      await client.close();
    }
  });

  it('answers oversize, non-JSON and non-JSON-RPC lines on raw stdio and serves the next line', async () => {
    const raw = spawnRawMcp({ BRAIN_HOME: newHome() });
    const send = raw.sendLine;
    send(JSON.stringify(initializeBody('raw')));
    send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    // Here the id comes first, as many clients write it.
    const big = {
      jsonrpc: '2.0',
      id: 'big',
      method: 'tools/call',
      params: { name: 'remember', arguments: {} },
    };
    send(
      JSON.stringify(big).replace('"arguments":{}', `"arguments":{"content":"${'y'.repeat(TWELVE_MIB)}"}`),
    );
    send('{"jsonrpc": "2.0", "id": 2, "method": ');
    send(JSON.stringify({ jsonrpc: '1.0', id: 3, method: 'tools/list' }));
    // A __proto__ argument (JSON.parse keeps it as an own key; any copy of the object drops it).
    send(
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"remember",' +
        '"arguments":{"content":"polluted","__proto__":{"importance":1}}}}',
    );
    send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/list' }));
    await until(() => raw.stdout().includes('"id":4') || raw.child.exitCode !== null);
    raw.child.stdin?.end();
    expect(await raw.exited).toBe(0);
    const replies = raw
      .stdout()
      .split('\n')
      .filter((l) => l.length > 0)
      .map(
        (l) => JSON.parse(l) as { id: unknown; error?: { code: number; message: string }; result?: unknown },
      );
    // Errors are written as each line ends, results when a handler finishes: compare in any order.
    const byId = (r: (typeof replies)[number]) => [r.id, r.error?.code];
    expect(replies).toHaveLength(6);
    expect(replies.map(byId)).toEqual(
      expect.arrayContaining([
        [1, undefined],
        ['big', -32600],
        [null, -32700],
        [3, -32600],
        [5, -32602],
        [4, undefined],
      ]),
    );
    expect(replies.find((r) => r.id === 5)?.error?.message).toMatch(
      /params\.arguments\.__proto__: the key __proto__ is not allowed/,
    );
    const bigReply = replies.find((r) => r.id === 'big');
    const listReply = replies.find((r) => r.id === 4);
    expect(bigReply?.error?.message).toMatch(
      /the message is \d+ bytes \(12 MiB\), over the limit of 4194304/,
    );
    expect((listReply?.result as { tools?: unknown[] } | undefined)?.tools).toHaveLength(
      MCP_TOOL_NAMES.length,
    );
    const warnings = logLines(raw.stderr())
      .filter((l) => l.level === 40)
      .map((l) => l.msg);
    expect(warnings).toEqual([
      expect.stringMatching(/^stdio message of \d+ bytes is over the 4194304-byte limit/),
      'stdio line is not JSON; answered -32700',
      'stdio message is not a JSON-RPC 2.0 message; answered -32600',
      'stdio message has a __proto__ key; answered -32602',
    ]);
  });

  it("starts in a project whose .env, brain.config.json and environment are not Brain's", async () => {
    const project = newHome();
    fs.writeFileSync(path.join(project, '.env'), 'NODE_ENV=staging\nBRAIN_PORT=abc\nLOG_LEVEL=loud\n');
    fs.writeFileSync(path.join(project, 'brain.config.json'), JSON.stringify({ name: 'my-app', version: 2 }));
    const env = { BRAIN_HOME: newHome(), LOG_LEVEL: 'INFO', BRAIN_PORT: 'abc', NODE_ENV: 'staging' };
    const { client, stderr } = await connect(env, project);
    try {
      expect(client.getServerVersion()?.name).toBe('brain');
      expect((await client.listTools()).tools).toHaveLength(MCP_TOOL_NAMES.length);
    } finally {
      await client.close();
    }
    const warnings = logLines(stderr())
      .filter((l) => l.level === 40)
      .map((l) => l.msg);
    expect(warnings).toEqual([
      'config: NODE_ENV: "staging" is not one of development, production, test; Brain treats it as not production',
      expect.stringMatching(
        /^config: BRAIN_PORT: expected an integer .*not used by this command, so ignored/,
      ),
    ]);
    expect(stderr()).toMatch(/brain mcp ready on stdio/); // LOG_LEVEL=INFO read as info
  });
});
