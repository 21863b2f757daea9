import fs from 'node:fs';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBrain, type ServingBrain, startServe, tempHome } from './brain-process.js';

let home: string;
let server: ServingBrain;

beforeAll(async () => {
  home = tempHome('brain-http-e2e-');
  server = await startServe({ BRAIN_HOME: home });
});

afterAll(async () => {
  if (server && server.child.exitCode === null) await server.stop('SIGKILL');
  fs.rmSync(home, { recursive: true, force: true });
});

/** A raw request with headers fetch will not let us forge (Host). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers }, (response) => {
      let body = '';
      response.on('data', (chunk) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
  });
}

describe('brain serve over HTTP', () => {
  it('binds 127.0.0.1 and answers /health/live', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(`${server.url}/health/live`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok' });
  });

  it('serves MCP Streamable HTTP at /mcp to the official SDK client', async () => {
    const client = new Client({ name: 'e2e-http', version: '0.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
    try {
      const saved = (await client.callTool({
        name: 'remember',
        arguments: { content: 'The on-call rotation changes on Mondays', tags: ['ops'] },
      })) as CallToolResult;
      expect(saved.isError).toBeFalsy();
      const found = (await client.callTool({
        name: 'recall',
        arguments: { query: 'on-call rotation', k: 5 },
      })) as CallToolResult;
      const hits = (found.structuredContent as { hits: { content: string }[] }).hits;
      expect(hits[0]?.content).toBe('The on-call rotation changes on Mondays');
    } finally {
      await client.close();
    }
  });

  it('rejects a foreign Host or Origin (DNS rebinding) and changes nothing', async () => {
    const port = new URL(server.url).port;
    const rebinding = await rawGet(`${server.url}/health/live`, { Host: `evil.example:${port}` });
    expect(rebinding.status).toBe(403);
    expect(rebinding.body).toMatch(/Host/);
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        origin: 'https://evil.example',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
    });
    expect(response.status).toBe(403);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('FORBIDDEN');
    expect(body.error.message).toMatch(/Origin/);
  });

  it('stops cleanly on SIGTERM and keeps every acknowledged write', async () => {
    const exitCode = await server.stop('SIGTERM');
    expect(exitCode).toBe(0);
    expect(server.logs()).toMatch(/"msg":"stopped"/);
    const list = await runBrain(['list', '--json'], { BRAIN_HOME: home });
    expect(JSON.parse(list.stdout)).toMatchObject({ total: 1 });
  });

  it('a port already in use gives a clear error', async () => {
    const blocker = http.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await runBrain(['serve', '--port', String(port)], { BRAIN_HOME: home });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        new RegExp(`cannot listen on 127.0.0.1:${port}: the address is already in use`),
      );
    } finally {
      blocker.close();
    }
  });
});
