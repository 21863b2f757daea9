import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { errorCodes } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer, initializeBody, MCP_HEADERS } from '../../../test/test-http.js';
import type { Brain } from '../../app/build-brain.js';
import { BrainError } from '../../core/errors.js';
import { createHostGuard, hostPart, isLoopbackHost } from './host-guard.js';
import { type HttpServer, toHttpError, toJsonRpcHttpError } from './http-server.js';

const logger = pino({ level: 'silent' });
const INIT_BODY = initializeBody('inject');

let fixture: TestBrain;
let brain: Brain;
let http: HttpServer;

beforeAll(async () => {
  fixture = await openTestBrain('brain-http-', { logger: logger });
  brain = fixture.brain;
  http = await createTestHttpServer(brain, logger, { allowedOrigins: ['https://app.example.com'] });
});

afterAll(async () => {
  await http?.close();
  await fixture?.close();
});

describe('HTTP routes (inject)', () => {
  it('GET /health/live answers ok with the version', async () => {
    const res = await http.app.inject({ method: 'GET', url: '/health/live' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', version: brain.version });
  });

  it('rejects a foreign Host header with 403 FORBIDDEN', async () => {
    const res = await http.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { host: 'evil.example' },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({
      code: 'FORBIDDEN',
      message: expect.stringContaining('evil.example'),
    });
  });

  it('guards /mcp too, before the body is read', async () => {
    const res = await http.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, host: 'evil.example:7777' },
      payload: INIT_BODY,
    });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({
      jsonrpc: '2.0',
      error: { code: -32000, message: expect.stringContaining('evil.example:7777') },
      id: null,
    });
  });

  it('rejects a foreign Origin and accepts loopback and configured origins', async () => {
    const get = (origin: string) =>
      http.app.inject({ method: 'GET', url: '/health/live', headers: { origin } });
    expect((await get('http://evil.example')).statusCode).toBe(403);
    expect((await get('http://localhost.evil.example')).statusCode).toBe(403);
    expect((await get('null')).statusCode).toBe(403);
    expect((await get('http://localhost:3000')).statusCode).toBe(200);
    expect((await get('http://127.0.0.1:5173')).statusCode).toBe(200);
    expect((await get('https://app.example.com')).statusCode).toBe(200);
  });

  it('answers malformed JSON on /mcp with a JSON-RPC parse error (-32700), 400, no stack trace', async () => {
    const res = await http.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: '{"jsonrpc": ',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      jsonrpc: '2.0',
      error: { code: -32700, message: 'request body is not valid JSON' },
      id: null,
    });
    expect(res.body).not.toMatch(/\bat .+:\d+:\d+/);
  });

  it('refuses a __proto__ key in an /mcp body by name, not as invalid JSON', async () => {
    const res = await http.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload:
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"remember",' +
        '"arguments":{"content":"x","__proto__":{"importance":1}}}}',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      jsonrpc: '2.0',
      error: {
        message: expect.stringMatching(
          /^request body: params\.arguments\.__proto__: the key __proto__ is not allowed/,
        ),
        data: { field: 'params.arguments.__proto__' },
      },
    });
  });

  it('answers an empty JSON body on /mcp with -32700 and an unsupported content type with 415', async () => {
    const empty = await http.app.inject({ method: 'POST', url: '/mcp', headers: MCP_HEADERS, payload: '' });
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32700 }, id: null });
    const text = await http.app.inject({
      method: 'POST',
      url: '/mcp?x=1',
      headers: { ...MCP_HEADERS, 'content-type': 'application/xml' },
      payload: '<hello/>',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toEqual({
      jsonrpc: '2.0',
      error: { code: -32000, message: expect.stringContaining('application/json') },
      id: null,
    });
  });

  it('answers a body over 1 MiB on /mcp with 413 and the limit in the JSON-RPC error data', async () => {
    const payload = JSON.stringify({ ...INIT_BODY, padding: 'x'.repeat(1024 * 1024) });
    const res = await http.app.inject({ method: 'POST', url: '/mcp', headers: MCP_HEADERS, payload });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({
      jsonrpc: '2.0',
      error: {
        code: -32000,
        message: 'request body is larger than 1048576 bytes (1 MiB)',
        data: { limit_bytes: 1024 * 1024 },
      },
      id: null,
    });
  });

  it('answers a method /mcp does not serve with a JSON-RPC 405 and Allow', async () => {
    const res = await http.app.inject({ method: 'PUT', url: '/mcp', headers: MCP_HEADERS, payload: {} });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST, GET, DELETE');
    expect(res.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 }, id: null });
  });

  it('answers an unknown route with 404 JSON', async () => {
    const res = await http.app.inject({ method: 'GET', url: '/v1/nothing?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({ code: 'NOT_FOUND', message: 'no route for GET /v1/nothing' });
  });

  it('needs a session for anything but initialize, and 404s an unknown session', async () => {
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    const noSession = await http.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: list,
    });
    expect(noSession.statusCode).toBe(400);
    expect(noSession.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
    const unknown = await http.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, 'mcp-session-id': 'no-such-session' },
      payload: list,
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { code: -32001 } });
    const get = await http.app.inject({
      method: 'GET',
      url: '/mcp',
      headers: { accept: 'text/event-stream' },
    });
    expect(get.statusCode).toBe(400);
  });

  it('opens a session with initialize and serves tools/list in it', async () => {
    const init = await http.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: INIT_BODY,
    });
    expect(init.statusCode).toBe(200);
    const sessionId = init.headers['mcp-session-id'];
    expect(typeof sessionId).toBe('string');
    const headers = {
      ...MCP_HEADERS,
      'mcp-session-id': String(sessionId),
      'mcp-protocol-version': '2025-06-18',
    };
    const list = await http.app.inject({
      method: 'POST',
      url: '/mcp',
      headers,
      payload: { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    });
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain('"remember"');
    // content-type: application/json on an empty DELETE (as some clients send) must not be a parse error.
    const del = await http.app.inject({ method: 'DELETE', url: '/mcp', headers });
    expect(del.statusCode).toBe(200);
    const after = await http.app.inject({ method: 'DELETE', url: '/mcp', headers });
    expect(after.statusCode).toBe(404);
  });
});

describe('MCP over real Streamable HTTP', () => {
  it('initializes, lists tools, remembers and recalls through the SDK client', async () => {
    const { url } = await http.listen();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`));
    const client = new Client({ name: 'http-test', version: '0.0.0' });
    await client.connect(transport);
    expect(transport.sessionId).toBeTruthy();
    expect(client.getServerVersion()?.name).toBe('brain');

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        'init',
        'remember',
        'recall',
        'record_episode',
        'list_episodes',
        'end_session',
      ]),
    );

    const content = 'The staging database lives on host db-staging-3';
    const remembered = (await client.callTool({
      name: 'remember',
      arguments: { content },
    })) as CallToolResult;
    expect(remembered.isError).toBeFalsy();
    const id = (remembered.structuredContent as { id: string }).id;
    const recalled = (await client.callTool({
      name: 'recall',
      arguments: { query: 'staging database host' },
    })) as CallToolResult;
    expect((recalled.structuredContent as { hits: { id: string }[] }).hits[0]?.id).toBe(id);
    expect(JSON.stringify(recalled.content)).toContain(content);

    const bad = (await client.callTool({
      name: 'recall',
      arguments: { query: 'x', k: 101 },
    })) as CallToolResult;
    expect(bad.isError).toBe(true);
    expect(JSON.stringify(bad.content)).toMatch(/from 1 to 100 at k/);

    const sessionId = transport.sessionId as string;
    await transport.terminateSession();
    await client.close();
    const gone = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'mcp-session-id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
    });
    expect(gone.status).toBe(404);
  });
});

describe('MCP session lifetime', () => {
  it('closes a session that stays idle longer than mcpSessionIdleMs', async () => {
    const idle = await createTestHttpServer(brain, logger, { mcpSessionIdleMs: 250 });
    try {
      const { url } = await idle.listen();
      const post = (body: unknown, sessionId?: string) =>
        fetch(`${url}/mcp`, {
          method: 'POST',
          headers: { ...MCP_HEADERS, ...(sessionId ? { 'mcp-session-id': sessionId } : {}) },
          body: JSON.stringify(body),
        });
      const init = await post(INIT_BODY);
      expect(init.status).toBe(200);
      await init.text();
      const sessionId = init.headers.get('mcp-session-id') ?? '';
      const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
      const soon = await post(list, sessionId);
      expect(soon.status).toBe(200);
      await soon.text();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const late = await post(list, sessionId);
      expect(late.status).toBe(404);
    } finally {
      await idle.close();
    }
  });
});

describe('host guard', () => {
  it('normalises host names', () => {
    expect(hostPart('LocalHost:7777')).toBe('localhost');
    expect(hostPart('[::1]:7777')).toBe('[::1]');
    expect(hostPart('::1')).toBe('[::1]');
    expect(hostPart('')).toBeNull();
    expect(isLoopbackHost('127.0.0.2')).toBe(true);
    expect(isLoopbackHost('127.0.0.1.nip.io')).toBe(false);
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
  });

  it('on loopback accepts loopback hosts, the bound host and allowed hosts only', () => {
    const check = createHostGuard({
      boundHost: '127.0.0.1',
      allowedHosts: ['brain.lan:8080'],
      allowedOrigins: [],
    });
    expect(check('localhost:7777', undefined)).toBeNull();
    expect(check('[::1]:7777', undefined)).toBeNull();
    expect(check('brain.lan', undefined)).toBeNull();
    expect(check('evil.example', undefined)).toMatch(/Host/);
    expect(check(undefined, undefined)).toMatch(/Host/);
    expect(check('localhost', 'https://[::1]:8443')).toBeNull();
    expect(check('localhost', 'file://')).toMatch(/Origin/);
  });

  it('bound elsewhere checks only the configured lists', () => {
    const open = createHostGuard({ boundHost: '0.0.0.0', allowedHosts: [], allowedOrigins: [] });
    expect(open('brain.example.com', 'https://anything.example')).toBeNull();
    const listed = createHostGuard({
      boundHost: '0.0.0.0',
      allowedHosts: ['brain.example.com'],
      allowedOrigins: ['https://ui.example.com'],
    });
    expect(listed('brain.example.com:443', undefined)).toBeNull();
    expect(listed('evil.example', undefined)).toMatch(/Host/);
    expect(listed('brain.example.com', 'https://ui.example.com')).toBeNull();
    expect(listed('brain.example.com', 'http://localhost:3000')).toMatch(/Origin/);
  });
});

describe('toHttpError', () => {
  it('maps codes to statuses and hides internal messages', () => {
    const log = logger;
    expect(toHttpError(new BrainError('NOT_FOUND', 'memory not found: x', { id: 'x' }), log)).toEqual({
      status: 404,
      body: { error: { code: 'NOT_FOUND', message: 'memory not found: x', details: { id: 'x' } } },
    });
    expect(toHttpError(new BrainError('MAINTENANCE', 'read-only'), log).status).toBe(503);
    expect(toHttpError(new BrainError('RATE_LIMITED', 'slow down'), log).status).toBe(429);
    const internal = toHttpError(new BrainError('STORAGE_ERROR', 'SQLITE_CORRUPT at /secret/path'), log);
    expect(internal.status).toBe(500);
    expect(JSON.stringify(internal.body)).not.toContain('secret');
    const thrown = toHttpError(new TypeError('cannot read x of undefined'), log);
    expect(thrown).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL' } } });
  });

  it('gives REST routes the REST body for Fastify body errors and /mcp the JSON-RPC one', () => {
    const invalidJson = new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY();
    expect(toHttpError(invalidJson, logger)).toEqual({
      status: 400,
      body: { error: { code: 'INVALID_INPUT', message: 'request body is not valid JSON', details: {} } },
    });
    expect(toJsonRpcHttpError(invalidJson, logger)).toEqual({
      status: 400,
      body: { jsonrpc: '2.0', error: { code: -32700, message: 'request body is not valid JSON' }, id: null },
    });
    const internal = toJsonRpcHttpError(new BrainError('STORAGE_ERROR', 'SQLITE_CORRUPT at /secret'), logger);
    expect(internal).toMatchObject({ status: 500, body: { error: { code: -32603 } } });
    expect(JSON.stringify(internal.body)).not.toContain('secret');
    const busy = toJsonRpcHttpError(new BrainError('MAINTENANCE', 'read-only for a migration'), logger);
    expect(busy).toMatchObject({
      status: 503,
      body: { error: { code: -32000, message: 'read-only for a migration' } },
    });
  });
});
