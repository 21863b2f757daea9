import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBrain } from '../../src/app/build-brain.js';
import { loadConfig, requireValidConfig } from '../../src/config/load-config.js';
import { BRAIN_BIN, brainEnv, runBrain, startServe, tempHome } from './brain-process.js';

const homes: string[] = [];
afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

function newHome(): string {
  const dir = tempHome('brain-faults-e2e-');
  homes.push(dir);
  return dir;
}

const dbOf = (home: string) => path.join(home, 'data', 'brain.db');

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

async function httpClient(url: string): Promise<Client> {
  const client = new Client({ name: 'e2e-faults', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
  return client;
}

/** `brain mcp` over stdio, with its stderr (the log) collected. */
async function stdioClient(env: Record<string, string>): Promise<{ client: Client; log: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BRAIN_BIN, 'mcp'],
    env: brainEnv(env) as Record<string, string>,
    stderr: 'pipe',
  });
  let log = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const client = new Client({ name: 'e2e-faults', version: '0.0.0' });
  await client.connect(transport);
  return { client, log: () => log };
}

async function contentsIn(env: Record<string, string>): Promise<string[]> {
  const listed = await runBrain(['list', '--json'], env);
  expect(listed.code, listed.stderr).toBe(0);
  return (JSON.parse(listed.stdout) as { items: { content: string }[] }).items.map((m) => m.content);
}

describe('storage faults, end to end', () => {
  it('a database file deleted under brain serve: writes are refused, /health/ready is 503, none is lost silently', async () => {
    const env = { BRAIN_HOME: newHome() };
    const server = await startServe(env);
    try {
      expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);
      const client = await httpClient(server.url);
      try {
        expect((await call(client, 'remember', { content: 'before the deletion' })).isError).toBeFalsy();
        fs.rmSync(dbOf(env.BRAIN_HOME));
        for (const content of ['in flight', 'after the deletion']) {
          const result = await call(client, 'remember', { content });
          expect(result.isError, content).toBe(true);
          expect(text(result)).toMatch(
            /^\[STORAGE_REPLACED\] remember was refused: the database file .*brain\.db was deleted or replaced while Brain was running; writes are refused so none is lost — restart Brain/,
          );
        }
      } finally {
        await client.close();
      }
      const ready = await fetch(`${server.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({
        status: 'failing',
        checks: { database: { ok: false, message: expect.stringMatching(/was deleted or replaced/) } },
      });
      expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(server.logs()).toMatch(/"level":50.*was deleted or replaced while Brain was running/);
    // The restart opens the file now at the path: no write was acknowledged after the deletion.
    expect(await contentsIn(env)).toEqual([]);
  });

  it('a file renamed over the database under brain serve: writes are refused and the restored file stays untouched', async () => {
    const env = { BRAIN_HOME: newHome() };
    const backup = { BRAIN_HOME: newHome() };
    expect((await runBrain(['remember', 'from the backup'], backup)).code).toBe(0);
    const server = await startServe(env);
    try {
      const client = await httpClient(server.url);
      try {
        expect((await call(client, 'remember', { content: 'original' })).isError).toBeFalsy();
        fs.renameSync(dbOf(backup.BRAIN_HOME), dbOf(env.BRAIN_HOME));
        const result = await call(client, 'remember', { content: 'after the restore' });
        expect(text(result)).toMatch(/^\[STORAGE_REPLACED\]/);
      } finally {
        await client.close();
      }
      expect((await fetch(`${server.url}/health/ready`)).status).toBe(503);
    } finally {
      await server.stop();
    }
    expect(await contentsIn(env)).toEqual(['from the backup']);
  });

  it('a write lock held past the busy timeout: remember gets STORAGE_BUSY, get and list still answer with the counts', async () => {
    const env = { BRAIN_HOME: newHome(), BRAIN_BUSY_TIMEOUT_MS: '200' };
    const { client } = await stdioClient(env);
    const holder = new Database(dbOf(env.BRAIN_HOME));
    try {
      const saved = await call(client, 'remember', { content: 'the deploy window is Tuesday' });
      const id = (saved.structuredContent as { id: string }).id;
      holder.exec('BEGIN IMMEDIATE');
      // The recall's access bump cannot be written while the lock is held: it stays pending.
      expect((await call(client, 'recall', { query: 'deploy window' })).isError).toBeFalsy();
      const busy = await call(client, 'remember', { content: 'blocked by the lock' });
      expect(text(busy)).toMatch(
        /^\[STORAGE_BUSY\] remember could not run now: database file .* is locked by another process.*Wait a few seconds and call remember again/,
      );
      const got = await call(client, 'get_memory', { id });
      expect(got.isError, text(got)).toBeFalsy();
      expect(got.structuredContent).toMatchObject({ id, access_count: 1 });
      const listed = await call(client, 'list_memories', {});
      expect(listed.isError, text(listed)).toBeFalsy();
      expect((listed.structuredContent as { total: number }).total).toBe(1);
      holder.exec('ROLLBACK');
      expect((await call(client, 'remember', { content: 'after the lock' })).isError).toBeFalsy();
    } finally {
      if (holder.inTransaction) holder.exec('ROLLBACK');
      holder.close();
      await client.close();
    }
  });

  it("a damaged page: the start, or a one-shot command's first read, says STORAGE_CORRUPT with brain db recover, and the log holds the cause", async () => {
    const env = { BRAIN_HOME: newHome() };
    const config = requireValidConfig(loadConfig({ env: brainEnv(env), cwd: env.BRAIN_HOME }));
    const brain = await buildBrain(config, { logger: pino({ level: 'silent' }) });
    for (let i = 0; i < 300; i++) {
      await brain.services.memory.remember(brain.scope, { content: `fact ${i} ${'padding '.repeat(20)}` });
    }
    await brain.close();
    const db = new Database(config.dbPath, { readonly: true });
    const { rootpage } = db
      .prepare("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'memories'")
      .get() as { rootpage: number };
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    db.close();
    // Garbage over the memories table's root page; page 1 stays intact, so Brain starts.
    const fd = fs.openSync(config.dbPath, 'r+');
    fs.writeSync(fd, Buffer.alloc(pageSize, 0xa7), 0, pageSize, (rootpage - 1) * pageSize);
    fs.closeSync(fd);

    // Every server start runs SQLite's quick_check first: it refuses with the advice, embedder or not.
    for (const extra of [{}, { BRAIN_EMBEDDER: 'none' }] as Record<string, string>[]) {
      const refused = await runBrain(['mcp'], { ...env, ...extra });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /is damaged \(quick_check: .*\): stop Brain, then run `brain db recover`/,
      );
    }
    // A one-shot command skips that check; its first read of the damaged page says the same.
    const listed = await runBrain(['list'], { ...env, BRAIN_EMBEDDER: 'none' });
    expect(listed.code).toBe(1);
    expect(listed.stderr).toMatch(
      /^error: database file .*brain\.db is corrupt or not a SQLite database: stop Brain, then run `brain db recover`/m,
    );
    expect(listed.stderr).toMatch(/"level":50.*"code":"SQLITE_CORRUPT/);
  });
});
