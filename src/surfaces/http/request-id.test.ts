import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer, initializeBody, MCP_HEADERS } from '../../../test/test-http.js';
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
