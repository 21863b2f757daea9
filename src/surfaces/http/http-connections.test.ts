import type net from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { connect, createTestHttpServer, initializeBody, MCP_HEADERS } from '../../../test/test-http.js';
import type { Brain } from '../../app/build-brain.js';
import { serverTimeoutOptions } from './http-connections.js';
import type { HttpServer, HttpServerConfig } from './http-server.js';

const INIT_BODY = initializeBody('timeouts');
const SHORT = { requestTimeoutMs: 300, headersTimeoutMs: 300 };

const logLines: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(line) });

let fixture: TestBrain;
let brain: Brain;
const servers = new Set<HttpServer>();

beforeAll(async () => {
  fixture = await openTestBrain('brain-http-connections-', { logger: pino({ level: 'silent' }) });
  brain = fixture.brain;
});

afterAll(async () => {
  await Promise.all([...servers].map((s) => s.close()));
  await fixture?.close();
});

async function listening(options: Partial<HttpServerConfig>): Promise<{ server: HttpServer; url: string }> {
  const server = await createTestHttpServer(brain, logger, options);
  servers.add(server);
  const { url } = await server.listen();
  return { server, url };
}

/** Sends one byte every 50 ms until the socket closes: a client that is slow, not silent. */
function trickle(socket: net.Socket): void {
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable) clearInterval(timer);
    else socket.write(' ');
  }, 50);
  socket.once('close', () => clearInterval(timer));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function bodyOf(response: string): unknown {
  return JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));
}

describe('request timeouts', () => {
  it('checks the timeouts often enough for the limits and caps the headers timeout at the request one', () => {
    expect(serverTimeoutOptions({ requestTimeoutMs: 30_000, headersTimeoutMs: 10_000 })).toEqual({
      requestTimeout: 30_000,
      headersTimeout: 10_000,
      connectionsCheckingInterval: 1000,
    });
    expect(serverTimeoutOptions({ requestTimeoutMs: 300, headersTimeoutMs: 10_000 })).toMatchObject({
      headersTimeout: 300,
      connectionsCheckingInterval: 75,
    });
  });

  it('answers a body that trickles in past the request timeout with a JSON-RPC 408 and closes', async () => {
    const { url } = await listening(SHORT);
    const { socket, closed } = connect(url);
    socket.write(
      'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        `Accept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{"jsonrpc":"2.0",`,
    );
    trickle(socket);
    const response = await closed;
    expect(response).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(bodyOf(response)).toEqual({
      jsonrpc: '2.0',
      error: {
        code: -32000,
        message: expect.stringContaining('not received in full within 300 ms'),
        data: { timeout_ms: 300 },
      },
      id: null,
    });
  });

  it('answers headers that stall past the headers timeout with the REST 408 and closes', async () => {
    const { url } = await listening(SHORT);
    const { socket, closed } = connect(url);
    socket.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const response = await closed;
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
    expect(bodyOf(response)).toEqual({
      error: {
        code: 'INVALID_INPUT',
        message: 'request headers not received within 300 ms',
        details: { timeout_ms: 300 },
      },
    });
  });

  it('keeps an MCP SSE stream open long past the request timeout (it covers receiving the request only)', async () => {
    const { url } = await listening(SHORT);
    const init = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers: MCP_HEADERS,
      body: JSON.stringify(INIT_BODY),
    });
    await init.text();
    const sessionId = init.headers.get('mcp-session-id') ?? '';
    const headers = { accept: 'text/event-stream', 'mcp-session-id': sessionId };
    const stream = await fetch(`${url}/mcp`, { headers });
    expect(stream.status).toBe(200);
    await sleep(1_000);
    // The SDK allows one standalone stream per session: 409 means the first one is still open.
    const second = await fetch(`${url}/mcp`, { headers });
    await second.text();
    expect(second.status).toBe(409);
    await stream.body?.cancel();
  });

  it('lets a keep-alive connection idle past the headers timeout and serves its next request', async () => {
    const { url } = await listening(SHORT);
    const { socket, received } = connect(url);
    const get = 'GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n';
    const answers = () => received().match(/HTTP\/1\.1 200 OK/g)?.length ?? 0;
    socket.write(get);
    await expect.poll(answers, { timeout: 5_000 }).toBe(1);
    await sleep(1_000);
    socket.write(get);
    await expect.poll(answers, { timeout: 5_000 }).toBe(2);
    socket.destroy();
  });
});

describe('shutdown', () => {
  it('cuts a request whose body is still arriving, so close() finishes instead of waiting for it', async () => {
    const { server, url } = await listening({ requestTimeoutMs: 600_000, headersTimeoutMs: 60_000 });
    const arrived = new Promise((resolve) => server.app.server.once('request', resolve));
    const { socket, closed } = connect(url);
    socket.write(
      'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${1000 * 1024}\r\n\r\n${'{"x":"'.padEnd(900 * 1024, 'x')}`,
    );
    await arrived;
    servers.delete(server);
    await server.close();
    await closed;
    expect(logLines.some((l) => l.includes('"cut":1'))).toBe(true);
  });
});
