import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer, initializeBody, MCP_HEADERS } from '../../../test/test-http.js';
import type { Brain } from '../../app/build-brain.js';
import type { HttpServer, HttpServerConfig } from './http-server.js';

const INIT_BODY = initializeBody('caps');
const PING = { jsonrpc: '2.0', id: 2, method: 'ping' };

/** Every log line of the servers below, to check that evictions are logged. */
const logLines: string[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => logLines.push(line) });

let fixture: TestBrain;
let brain: Brain;
const servers: HttpServer[] = [];

beforeAll(async () => {
  fixture = await openTestBrain('brain-mcp-sessions-', { logger: pino({ level: 'silent' }) });
  brain = fixture.brain;
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await fixture?.close();
});

async function serverWith(options: Partial<HttpServerConfig>): Promise<HttpServer> {
  const server = await createTestHttpServer(brain, logger, options);
  servers.push(server);
  return server;
}

/** Opens a session from `remoteAddress` (through inject) and returns its id. */
async function open(server: HttpServer, remoteAddress: string): Promise<string> {
  const res = await server.app.inject({
    method: 'POST',
    url: '/mcp',
    headers: MCP_HEADERS,
    payload: INIT_BODY,
    remoteAddress,
  });
  expect(res.statusCode, res.body).toBe(200);
  return String(res.headers['mcp-session-id']);
}

/** The status a ping in session `id` gets: 200 while it lives, 404 once it is gone. */
async function ping(server: HttpServer, id: string): Promise<number> {
  const res = await server.app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { ...MCP_HEADERS, 'mcp-session-id': id },
    payload: PING,
  });
  return res.statusCode;
}

describe('MCP session caps', () => {
  it('a client past its cap loses its own least recently used idle session, not another client’s', async () => {
    const server = await serverWith({ mcpMaxSessions: 10, mcpMaxSessionsPerClient: 2 });
    const other = await open(server, '10.0.0.9');
    const first = await open(server, '10.0.0.1');
    const second = await open(server, '10.0.0.1');
    expect(await ping(server, first)).toBe(200); // `second` is now the least recently used
    const third = await open(server, '10.0.0.1');
    expect(await ping(server, second)).toBe(404);
    expect(await ping(server, first)).toBe(200);
    expect(await ping(server, third)).toBe(200);
    expect(await ping(server, other)).toBe(200);
    const evicted = logLines.map((l) => JSON.parse(l)).find((l) => l.sessionId === second);
    expect(evicted).toMatchObject({
      cap: 'client',
      client: '10.0.0.1',
      msg: expect.stringMatching(/evict|closed/),
    });
  });

  it('a new client still gets a session when a flooder filled the global cap with idle sessions', async () => {
    const server = await serverWith({ mcpMaxSessions: 3, mcpMaxSessionsPerClient: 3 });
    const flood = [
      await open(server, '10.0.0.2'),
      await open(server, '10.0.0.2'),
      await open(server, '10.0.0.2'),
    ];
    const newcomer = await open(server, '10.0.0.3');
    expect(await ping(server, newcomer)).toBe(200);
    expect(await ping(server, flood[0] as string)).toBe(404);
    expect(await ping(server, flood[1] as string)).toBe(200);
    expect(await ping(server, flood[2] as string)).toBe(200);
    expect(logLines.some((l) => l.includes(flood[0] as string) && l.includes('"cap":"global"'))).toBe(true);
  });

  it('never evicts a session with an open stream; refuses with 503 and Retry-After only when all are busy', async () => {
    const server = await serverWith({ mcpMaxSessions: 2, mcpMaxSessionsPerClient: 2 });
    const { url } = await server.listen();
    const post = async (body: unknown, sessionId?: string) => {
      const res = await fetch(`${url}/mcp`, {
        method: 'POST',
        headers: { ...MCP_HEADERS, ...(sessionId ? { 'mcp-session-id': sessionId } : {}) },
        body: JSON.stringify(body),
      });
      await res.text();
      return res;
    };
    const stream = (sessionId: string) =>
      fetch(`${url}/mcp`, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } });
    const sessionOf = (res: Response) => res.headers.get('mcp-session-id') ?? '';

    const busy = sessionOf(await post(INIT_BODY));
    const idle = sessionOf(await post(INIT_BODY));
    const busyStream = await stream(busy);
    expect(busyStream.status).toBe(200);
    expect((await post(PING, idle)).status).toBe(200); // `busy` is the least recently used, but streaming
    const third = sessionOf(await post(INIT_BODY));
    expect((await post(PING, idle)).status).toBe(404);
    expect((await post(PING, busy)).status).toBe(200);

    const thirdStream = await stream(third);
    expect(thirdStream.status).toBe(200);
    const refused = await post(INIT_BODY);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('10');
    const elsewhere = await server.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: INIT_BODY,
      remoteAddress: '10.0.0.4',
    });
    expect(elsewhere.statusCode).toBe(503);
    expect(elsewhere.json()).toMatchObject({
      jsonrpc: '2.0',
      error: { code: -32000, message: expect.stringContaining('busy'), data: { cap: 'global', limit: 2 } },
      id: null,
    });

    // Once a stream closes, its session is idle again and makes room for the next client.
    await busyStream.body?.cancel();
    await expect.poll(async () => (await post(INIT_BODY)).status, { timeout: 5_000 }).toBe(200);
    expect((await post(PING, busy)).status).toBe(404);
    await thirdStream.body?.cancel();
  });
});
