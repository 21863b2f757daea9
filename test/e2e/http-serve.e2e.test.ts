import fs from 'node:fs';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../test-http.js';
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
    // /mcp answers in JSON-RPC, its guard rejection included.
    const body = (await response.json()) as { jsonrpc: string; error: { code: number; message: string } };
    expect(body).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 }, id: null });
    expect(body.error.message).toMatch(/Origin/);
  });

  it('answers malformed JSON on /mcp with a JSON-RPC parse error', async () => {
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc": ',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      jsonrpc: '2.0',
      error: { code: -32700, message: 'request body is not valid JSON' },
      id: null,
    });
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

/** Headers of a 1 MB POST /mcp and the first 900 KB of its body; the rest never comes (or trickles). */
function stalledUpload(url: string) {
  const { socket, closed } = connect(url);
  socket.write(
    'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Accept: application/json, text/event-stream\r\nContent-Length: ${1000 * 1000}\r\n\r\n` +
      '{"x":"'.padEnd(900 * 1000, 'x'),
  );
  return { socket, closed };
}

describe('brain serve and slow clients', () => {
  let slowHome: string;

  beforeAll(() => {
    slowHome = tempHome('brain-http-slow-e2e-');
  });

  afterAll(() => {
    fs.rmSync(slowHome, { recursive: true, force: true });
  });

  it('cuts an upload that trickles past BRAIN_REQUEST_TIMEOUT_MS with a 408', async () => {
    const slow = await startServe({
      BRAIN_HOME: slowHome,
      BRAIN_REQUEST_TIMEOUT_MS: '300',
      BRAIN_HEADERS_TIMEOUT_MS: '300',
    });
    try {
      const { socket, closed } = stalledUpload(slow.url);
      const timer = setInterval(() => socket.writable && socket.write('x'), 100);
      const response = await closed.finally(() => clearInterval(timer));
      expect(response).toMatch(/^HTTP\/1\.1 408 /);
      expect(JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))).toMatchObject({
        jsonrpc: '2.0',
        error: { message: expect.stringContaining('within 300 ms'), data: { timeout_ms: 300 } },
      });
    } finally {
      expect(await slow.stop('SIGTERM')).toBe(0);
    }
  });

  it('on SIGTERM cuts an upload whose body is still arriving and exits 0', async () => {
    const slow = await startServe({ BRAIN_HOME: slowHome });
    const { closed } = stalledUpload(slow.url);
    // Fastify logs the request once its headers are in; the body is still 100 KB short.
    await expect.poll(() => /"url":"\/mcp"/.test(slow.logs()), { timeout: 10_000 }).toBe(true);
    expect(await slow.stop('SIGTERM')).toBe(0);
    await closed;
    expect(slow.logs()).toMatch(/"cut":1/);
    expect(slow.logs()).toMatch(/"msg":"stopped"/);
  });

  it('a second signal while the drain waits for a request exits at once with 130', async () => {
    // A home of its own: the run left behind must not be picked up by the other tests' servers.
    const ownHome = tempHome('brain-http-signal-e2e-');
    const serving = await startServe({ BRAIN_HOME: ownHome });
    try {
      // A waiting execution holds its request open (up to the request timeout) and so the drain, far
      // past its 10 s limit (which would exit 1): only the second signal can end the process now.
      const held = fetch(`${serving.url}/v1/executions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: 'import time\ntime.sleep(60)' }),
      }).catch((error: unknown) => error);
      const running = async () => {
        const res = await fetch(`${serving.url}/v1/executions`);
        const { executions } = (await res.json()) as { executions: { status: string }[] };
        return executions.some((e) => e.status === 'running');
      };
      await expect.poll(running, { timeout: 15_000 }).toBe(true);
      serving.child.kill('SIGTERM');
      await expect
        .poll(() => serving.logs().includes('"msg":"shutting down: draining requests"'), { timeout: 5_000 })
        .toBe(true);
      expect(await serving.stop('SIGINT')).toBe(130);
      expect(serving.logs()).toMatch(/"signal":"SIGINT","msg":"second signal while draining: exiting now"/);
      expect(serving.logs()).not.toMatch(/"msg":"stopped"/);
      // The held request never got an answer: its connection went with the process.
      expect(await held).toBeInstanceOf(Error);
    } finally {
      if (serving.child.exitCode === null) await serving.stop('SIGKILL');
      fs.rmSync(ownHome, { recursive: true, force: true });
    }
  });
});
