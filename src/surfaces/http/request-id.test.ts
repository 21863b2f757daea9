import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpaStandIn, startOpa } from '../../../test/auth-stand-ins.js';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer, initializeBody, MCP_HEADERS } from '../../../test/test-http.js';
import { createAppLogger } from '../../app/app-logger.js';
import type { HttpServer } from './http-server.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Every line the server logged, parsed (the pino output captured by a stream). */
const lines: Record<string, unknown>[] = [];
const logger = pino(
  { level: 'info' },
  { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
);
let fixture: TestBrain;
let http: HttpServer;

beforeAll(async () => {
  fixture = await openTestBrain('brain-request-id-', { logger });
  http = await createTestHttpServer(fixture.brain, logger);
});

afterAll(async () => {
  await http?.close();
  await fixture?.close();
});

const linesOf = (id: string) => lines.filter((l) => l.request_id === id);

describe('x-request-id', () => {
  it('echoes a well-formed id and logs every line of the request with it', async () => {
    const id = 'edge-proxy:7f3a.01_b';
    const res = await http.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': id },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe(id);
    expect(linesOf(id).map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
  });

  it('answers errors and MCP (which writes its own response) with the id too', async () => {
    const missing = await http.app.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { 'x-request-id': 'r-404' },
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['x-request-id']).toBe('r-404');
    const mcp = await http.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, 'x-request-id': 'r-mcp' },
      payload: initializeBody('request-id-test'),
    });
    expect(mcp.statusCode).toBe(200);
    expect(mcp.headers['x-request-id']).toBe('r-mcp');
    expect(linesOf('r-mcp').length).toBeGreaterThan(0);
  });

  it('replaces a missing or malformed id with a new UUID', async () => {
    for (const bad of [undefined, '', 'has spaces', 'quote"s', 'x'.repeat(129), 'ünïcode']) {
      const res = await http.app.inject({
        method: 'GET',
        url: '/health/live',
        headers: bad === undefined ? {} : { 'x-request-id': bad },
      });
      const id = res.headers['x-request-id'] as string;
      expect(id, String(bad)).toMatch(UUID);
      expect(linesOf(id).length).toBe(2);
      if (bad) expect(lines.some((l) => l.request_id === bad)).toBe(false);
    }
    const longest = 'a'.repeat(128);
    const res = await http.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': longest },
    });
    expect(res.headers['x-request-id']).toBe(longest);
  });
});

describe("the services' log lines during a request", () => {
  const TOKEN = 'a-static-token-for-the-request-id-tests';
  /** What `brain serve`'s own logger wrote, raw and parsed. */
  const raw: string[] = [];
  const parsed = () => raw.map((l) => JSON.parse(l) as Record<string, unknown>);
  const serveLogger = createAppLogger({
    level: 'info',
    stream: 'stdout',
    terminal: { write: (line: string) => void raw.push(line) },
  });
  let opa: OpaStandIn;
  let brain: TestBrain;
  let server: HttpServer;

  beforeAll(async () => {
    // OPA does not answer and the policy fails open: the policy client (a service holding the process
    // logger, not request.log) warns on every authorised request and lets it through.
    opa = await startOpa();
    opa.answer = 'down';
    brain = await openTestBrain('brain-request-id-services-', {
      logger: serveLogger,
      env: {
        BRAIN_API_TOKEN: TOKEN,
        BRAIN_OPA_ENDPOINT: opa.endpoint,
        BRAIN_OPA_FAIL_CLOSED: 'false',
        BRAIN_RATE_RPS: '0',
      },
    });
    server = await createTestHttpServer(brain.brain, serveLogger);
  });

  afterAll(async () => {
    await server?.close();
    await brain?.close();
    await opa?.close();
  });

  const opaLines = (id: string) =>
    parsed().filter((l) => l.msg === 'OPA did not answer a policy decision' && l.request_id === id);

  it('carries the request id on a line a service logs while handling a REST request', async () => {
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/memories',
      headers: { authorization: `Bearer ${TOKEN}`, 'x-request-id': 'r-rest' },
      payload: { content: 'logged under its request' },
    });
    expect(res.statusCode).toBe(201);
    expect(opaLines('r-rest')).toHaveLength(1);
    // Fastify's own line of the same request, logged inside its context, has the id once: the mixin
    // adds no second key to a logger that binds it.
    const completed = raw.filter((l) => l.includes('"request completed"') && l.includes('"r-rest"'));
    expect(completed).toHaveLength(1);
    expect(completed[0]?.match(/"request_id":/g)).toHaveLength(1);
  });

  it('carries it on a line logged during an MCP tool call over HTTP', async () => {
    const headers = { ...MCP_HEADERS, authorization: `Bearer ${TOKEN}` };
    const init = await server.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...headers, 'x-request-id': 'r-init' },
      payload: initializeBody('request-id-services'),
    });
    expect(init.statusCode).toBe(200);
    const call = await server.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: {
        ...headers,
        'mcp-session-id': init.headers['mcp-session-id'] as string,
        'mcp-protocol-version': '2025-06-18',
        'x-request-id': 'r-tool',
      },
      payload: {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'remember', arguments: { content: 'remembered over MCP' } },
      },
    });
    expect(call.statusCode).toBe(200);
    expect(call.body).toContain('"status":"created"');
    expect(opaLines('r-tool')).toHaveLength(1);
  });

  it('stamps no request id on lines logged outside a request', async () => {
    const migrated = parsed().filter((l) => l.msg === 'database migrated');
    expect(migrated).toHaveLength(1);
    expect(migrated[0]).not.toHaveProperty('request_id');
    serveLogger.warn({ after: 'requests' }, 'a line between requests');
    expect(parsed().at(-1)).toMatchObject({ msg: 'a line between requests' });
    expect(parsed().at(-1)).not.toHaveProperty('request_id');
  });
});
