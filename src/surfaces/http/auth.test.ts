/**
 * The auth matrix: every route and every MCP tool, with no token, a bad token, a revoked key, an expired
 * JWT, a JWT for another audience, a credential lacking the scope, and another tenant's memory id; and
 * what the right credential gets. Runs on the engine BRAIN_TEST_ENGINE names.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SignJWT } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer, initializeBody, MCP_HEADERS } from '../../../test/test-http.js';
import { createApiKey } from '../../modules/auth/api-keys.js';
import type { Scope } from '../../modules/auth/scopes.js';
import type { HttpServer } from './http-server.js';

const SECRET = 'a-test-secret-of-at-least-thirty-two-characters';
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'brain-test';
const logger = pino({ level: 'silent' });

let t: TestBrain;
let http: HttpServer;
let url: string;
const keys: Record<string, string> = {};
let memoryA: string;
let sessionA: string;
/** A queued execution of tenant B (the execute key's tenant); no worker runs in this test. */
let executionB: string;

async function key(name: string, tenantId: string, scopes: Scope[]): Promise<void> {
  const made = await createApiKey(t.brain.storage.stores().apiKeys, { tenantId, scopes, name }, new Date());
  keys[name] = made.key;
}

function jwt(claims: Record<string, unknown>, options: { exp?: number | string; aud?: string } = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setIssuer(ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(new TextEncoder().encode(SECRET));
}

beforeAll(async () => {
  t = await openTestBrain('brain-auth-', {
    logger,
    env: {
      BRAIN_JWT_SECRET: SECRET,
      BRAIN_JWT_ISSUER: ISSUER,
      BRAIN_JWT_AUDIENCE: AUDIENCE,
      BRAIN_RATE_RPS: '0',
    },
  });
  await key('readA', 'tenant-a', ['read']);
  await key('writeA', 'tenant-a', ['write']);
  await key('rwA', 'tenant-a', ['read', 'write']);
  await key('adminA', 'tenant-a', ['read', 'write', 'admin']);
  await key('allB', 'tenant-b', ['read', 'write', 'execute', 'admin']);
  await key('revoked', 'tenant-a', ['read', 'write', 'admin']);
  const store = t.brain.storage.stores().apiKeys;
  const [revoked] = (await store.list({ tenantId: 'tenant-a' })).filter((k) => k.name === 'revoked');
  await store.revoke(revoked?.id ?? '', new Date().toISOString());
  const created = await t.brain.services.memory.remember(
    { tenantId: 'tenant-a', principal: 'test' },
    { content: 'tenant A keeps the launch code in the blue folder', key: 'code' },
  );
  memoryA = created.id;
  sessionA = (await t.brain.services.sessions.init({ tenantId: 'tenant-a', principal: 'test' }, {}))
    .session_id;
  executionB = (
    await t.brain.services.executions.execute(
      { tenantId: 'tenant-b', principal: 'test' },
      { code: '1', wait: false },
    )
  ).id;
  http = await createTestHttpServer(t.brain, logger);
  ({ url } = await http.listen());
});

afterAll(async () => {
  await http?.close();
  await t?.close();
});

/** Each route's request (a real id for `:id`) and the scope it needs; public routes need none. */
function routeCase(method: string, path: string): { url: string; body?: unknown; scope: Scope | null } {
  const id = path.startsWith('/v1/sessions/')
    ? sessionA
    : path.startsWith('/v1/executions/')
      ? executionB
      : memoryA;
  const at = path.replace(':id', id);
  const table: Record<string, { body?: unknown; scope: Scope | null }> = {
    'POST /v1/memories': { body: { content: 'a new fact from the matrix' }, scope: 'write' },
    'POST /v1/memories/batch': { body: { memories: [{ content: 'a batch fact' }] }, scope: 'write' },
    'GET /v1/memories': { scope: 'read' },
    'POST /v1/memories/search': { body: { query: 'launch code' }, scope: 'read' },
    'POST /v1/memories/forget': { body: { filter: { tags: ['disposable'] } }, scope: 'write' },
    'GET /v1/memories/:id': { scope: 'read' },
    'GET /v1/memories/:id/explain': { scope: 'read' },
    'GET /v1/memories/:id/history': { scope: 'read' },
    'PATCH /v1/memories/:id': { body: { importance: 0.9 }, scope: 'write' },
    'DELETE /v1/memories/:id': { scope: 'write' },
    'POST /v1/sessions': { body: {}, scope: 'read' },
    'POST /v1/sessions/:id/episodes': { body: { role: 'user', content: 'a matrix episode' }, scope: 'write' },
    'GET /v1/sessions/:id/episodes': { scope: 'read' },
    'POST /v1/sessions/:id/end': { scope: 'write' },
    'POST /v1/executions': { body: { code: '1', wait: false }, scope: 'execute' },
    'GET /v1/executions': { scope: 'execute' },
    'GET /v1/executions/:id': { scope: 'execute' },
    'DELETE /v1/executions/:id': { scope: 'execute' },
    'POST /remember': { body: { content: 'a guide-form fact' }, scope: 'write' },
    'POST /recall': { body: { query: 'launch code', k: 3 }, scope: 'read' },
    'GET /admin/maintenance': { scope: 'admin' },
    'PUT /admin/maintenance': { body: { on: false }, scope: 'admin' },
    'POST /admin/rebalance-memory': { body: {}, scope: 'admin' },
    'GET /metrics': { scope: 'admin' },
    'POST /mcp': { body: initializeBody('matrix'), scope: null },
    'GET /mcp': { scope: null },
    'DELETE /mcp': { scope: null },
    'GET /health': { scope: null },
    'GET /health/live': { scope: null },
    'GET /health/ready': { scope: null },
    'GET /.well-known/oauth-protected-resource': { scope: null },
  };
  const entry = table[`${method} ${path}`];
  if (!entry) throw new Error(`the auth matrix has no case for ${method} ${path}: add it`);
  return { url: at, ...entry };
}

const PUBLIC = new Set([
  'GET /health',
  'GET /health/live',
  'GET /health/ready',
  'GET /.well-known/oauth-protected-resource',
]);

async function inject(method: string, path: string, body: unknown, token?: string) {
  const headers: Record<string, string> = path === '/mcp' ? { ...MCP_HEADERS } : {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await http.app.inject({
    method: method as 'GET',
    url: path,
    headers,
    ...(body !== undefined ? { payload: body as object } : {}),
  });
  return { status: res.statusCode, headers: res.headers, body: res.body ? safeJson(res.body) : null };
}

function safeJson(text: string): {
  error?: { code: string; message: string; details: Record<string, unknown> };
} {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/** The right credential for a scope: a key with exactly what the route needs (and read for admin). */
function keyFor(scope: Scope): string {
  return { read: keys.readA, write: keys.writeA, admin: keys.adminA, execute: keys.allB }[scope] as string;
}

/** A credential without the scope. */
function keyWithout(scope: Scope): string {
  return { read: keys.writeA, write: keys.readA, admin: keys.rwA, execute: keys.rwA }[scope] as string;
}

describe('the auth matrix over every route', () => {
  it('has a case for every route served', () => {
    const routes = http.routes.filter((r) => !r.url.startsWith('/docs') && r.url !== '/openapi.json');
    expect(routes.length).toBeGreaterThan(15);
    for (const r of routes) expect(() => routeCase(r.method, r.url), `${r.method} ${r.url}`).not.toThrow();
  });

  it('answers 401 with a Bearer challenge to no token, a bad token, a revoked key, an expired or foreign JWT', async () => {
    const expired = await jwt(
      { tenant: 'tenant-a', scope: 'read write admin' },
      { exp: Math.floor(Date.now() / 1000) - 60 },
    );
    const foreign = await jwt({ tenant: 'tenant-a', scope: 'read write admin' }, { aud: 'someone-else' });
    const bad = [
      'not-a-key',
      'brain_k_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      keys.revoked,
      expired,
      foreign,
    ];
    const reasons = ['malformed', 'unknown_key', 'revoked', 'expired', 'bad_aud'];
    for (const r of http.routes) {
      const label = `${r.method} ${r.url}`;
      if (r.url.startsWith('/docs') || r.url === '/openapi.json' || PUBLIC.has(label)) continue;
      const c = routeCase(r.method, r.url);
      const none = await inject(r.method, c.url, c.body);
      expect(none.status, `${label} without a token`).toBe(401);
      expect(none.headers['www-authenticate'], label).toMatch(/^Bearer realm="brain"/);
      // REST errors name the code; /mcp answers JSON-RPC errors (code -32000) with the same message.
      if (r.url === '/mcp') expect(JSON.stringify(none.body), label).toContain('authentication required');
      else expect(none.body?.error?.code, label).toBe('UNAUTHENTICATED');
      for (const [i, token] of bad.entries()) {
        const res = await inject(r.method, c.url, c.body, token);
        expect(res.status, `${label} with ${reasons[i]}`).toBe(401);
        expect(res.headers['www-authenticate'], label).toMatch(/error="invalid_token"/);
        const reason =
          r.url === '/mcp'
            ? (res.body as { error?: { data?: { reason?: string } } }).error?.data?.reason
            : res.body?.error?.details?.reason;
        expect(reason, `${label} with ${reasons[i]}`).toBe(reasons[i]);
      }
    }
    // The memory is as it was: nothing ran.
    const still = await t.brain.services.memory.get({ tenantId: 'tenant-a' }, { id: memoryA });
    expect(still.importance).toBe(0.5);
  });

  it('answers 403 naming the scope to a credential without it, and runs nothing', async () => {
    for (const r of http.routes) {
      const c = routeCase(r.method, r.url);
      if (c.scope === null) continue;
      const label = `${r.method} ${r.url}`;
      const res = await inject(r.method, c.url, c.body, keyWithout(c.scope));
      expect(res.status, label).toBe(403);
      expect(res.body?.error?.code, label).toBe('FORBIDDEN');
      expect(res.body?.error?.message, label).toContain(`needs the ${c.scope} scope`);
      expect(res.headers['www-authenticate'], label).toContain('insufficient_scope');
    }
    expect((await t.brain.services.memory.get({ tenantId: 'tenant-a' }, { id: memoryA })).importance).toBe(
      0.5,
    );
  });

  it('serves each route to a credential holding its scope', async () => {
    for (const r of http.routes) {
      const c = routeCase(r.method, r.url);
      if (c.scope === null || r.method === 'DELETE') continue;
      const res = await inject(r.method, c.url, c.body, keyFor(c.scope));
      expect(res.status, `${r.method} ${r.url}`).toBeLessThan(300);
    }
  });

  it("never shows or changes another tenant's memory by its id", async () => {
    const b = keys.allB as string;
    expect((await inject('GET', `/v1/memories/${memoryA}`, undefined, b)).status).toBe(404);
    expect((await inject('PATCH', `/v1/memories/${memoryA}`, { importance: 0.1 }, b)).status).toBe(404);
    expect((await inject('DELETE', `/v1/memories/${memoryA}`, undefined, b)).status).toBe(404);
    const search = await inject('POST', '/v1/memories/search', { query: 'launch code blue folder' }, b);
    expect(search.status).toBe(200);
    expect((search.body as { hits: unknown[] }).hits).toEqual([]);
    const list = await inject('GET', '/v1/memories', undefined, b);
    expect((list.body as { items: { id: string }[] }).items.map((m) => m.id)).not.toContain(memoryA);
    const mine = await t.brain.services.memory.get({ tenantId: 'tenant-a' }, { id: memoryA });
    expect(mine.content).toContain('blue folder');
  });

  it("ranks a tenant's recall the same whatever another tenant stores", async () => {
    const query = { query: 'which folder holds the launch code', k: 5 };
    const before = await inject('POST', '/v1/memories/search', query, keys.readA);
    const memories = Array.from({ length: 50 }, (_, i) => ({
      content: `launch code folder note ${i} of tenant B`,
    }));
    expect((await inject('POST', '/v1/memories/batch', { memories }, keys.allB)).status).toBe(200);
    const after = await inject('POST', '/v1/memories/search', query, keys.readA);
    // The same hits with the same scores (to 6 places: recency moves a score by ~1e-9 between the calls).
    const scores = (r: typeof before) =>
      (r.body as { hits: { id: string; score: number }[] }).hits.map((h) => [h.id, h.score.toFixed(6)]);
    expect(scores(before).length).toBeGreaterThan(0);
    expect(scores(after)).toEqual(scores(before));
  });

  it("takes a JWT's tenant and scopes from its claims", async () => {
    const token = await jwt({ tenant: 'tenant-a', scope: 'read' });
    const res = await inject('GET', `/v1/memories/${memoryA}`, undefined, token);
    expect(res.status).toBe(200);
    const write = await inject('POST', '/v1/memories', { content: 'jwt write' }, token);
    expect(write.status).toBe(403);
    const other = await jwt({ tenant: 'tenant-b', scopes: ['read', 'write'] });
    expect((await inject('GET', `/v1/memories/${memoryA}`, undefined, other)).status).toBe(404);
    const badTenant = await jwt({ tenant: 'no spaces allowed', scope: 'read' });
    const refused = await inject('GET', '/v1/memories', undefined, badTenant);
    expect(refused.status).toBe(401);
    expect(refused.body?.error?.details?.reason).toBe('bad_tenant');
  });

  it('records refused writes and every write in the audit log, without content', async () => {
    await inject('POST', '/v1/memories', { content: 'the secret recipe is paprika' }, keys.readA);
    const ok = await inject(
      'POST',
      '/v1/memories',
      { content: 'the audited recipe is paprika' },
      keys.writeA,
    );
    expect(ok.status).toBe(201);
    await t.brain.audit.flush();
    const events = await t.brain.storage
      .stores()
      .audit.list({ tenantId: 'tenant-a', action: 'memory.', limit: 50 });
    const denied = events.find((e) => e.outcome === 'denied' && e.action === 'memory.remember');
    expect(denied?.principal).toMatch(/^key:k_/);
    const done = events.find((e) => e.outcome === 'ok' && e.target === (ok.body as { id: string }).id);
    expect(done).toMatchObject({ action: 'memory.remember', tenantId: 'tenant-a' });
    expect(JSON.stringify(events)).not.toContain('paprika');
  });
});

describe('the auth matrix over every MCP tool', () => {
  async function client(token?: string) {
    const c = new Client({ name: 'matrix', version: '0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
      requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : {},
    });
    await c.connect(transport);
    return c;
  }

  const TOOLS: { name: string; args: () => Record<string, unknown>; scope: Scope }[] = [
    { name: 'init', args: () => ({}), scope: 'read' },
    { name: 'remember', args: () => ({ content: 'an MCP fact' }), scope: 'write' },
    { name: 'recall', args: () => ({ query: 'launch code' }), scope: 'read' },
    { name: 'get_memory', args: () => ({ id: memoryA }), scope: 'read' },
    { name: 'memory_history', args: () => ({ id: memoryA }), scope: 'read' },
    { name: 'list_memories', args: () => ({}), scope: 'read' },
    { name: 'update_memory', args: () => ({ id: memoryA, importance: 0.7 }), scope: 'write' },
    { name: 'forget', args: () => ({ filter: { tags: ['disposable'] } }), scope: 'write' },
    {
      name: 'record_episode',
      args: () => ({ session_id: sessionA, role: 'user', content: 'an MCP episode' }),
      scope: 'write',
    },
    { name: 'list_episodes', args: () => ({ session_id: sessionA }), scope: 'read' },
    { name: 'end_session', args: () => ({ session_id: sessionA }), scope: 'write' },
    { name: 'execute', args: () => ({ code: '1', wait: false }), scope: 'execute' },
    { name: 'get_execution', args: () => ({ id: executionB }), scope: 'execute' },
  ];

  it('has a case for every tool', async () => {
    const c = await client(keys.readA);
    const { tools } = await c.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(TOOLS.map((tool) => tool.name).sort());
    await c.close();
  });

  it('refuses to connect without a valid credential', async () => {
    const expired = await jwt(
      { tenant: 'tenant-a', scope: 'read' },
      { exp: Math.floor(Date.now() / 1000) - 60 },
    );
    const foreign = await jwt({ tenant: 'tenant-a', scope: 'read' }, { aud: 'someone-else' });
    for (const token of [undefined, 'nonsense', keys.revoked, expired, foreign])
      await expect(client(token)).rejects.toThrow(/Error POSTing to endpoint/);
  });

  it("gates each tool by the call's own credentials and keeps tenants apart", async () => {
    for (const tool of TOOLS) {
      const without = await client(keyWithout(tool.scope));
      const refused = await without.callTool({ name: tool.name, arguments: tool.args() });
      expect(refused.isError, tool.name).toBe(true);
      expect(JSON.stringify(refused.content), tool.name).toContain('FORBIDDEN');
      await without.close();
      const withScope = await client(
        tool.scope === 'read' ? keys.readA : tool.scope === 'execute' ? keys.allB : keys.rwA,
      );
      const allowed = await withScope.callTool({ name: tool.name, arguments: tool.args() });
      expect(allowed.isError ?? false, `${tool.name}: ${JSON.stringify(allowed.content)}`).toBe(false);
      await withScope.close();
    }
    const b = await client(keys.allB);
    const get = await b.callTool({ name: 'get_memory', arguments: { id: memoryA } });
    expect(JSON.stringify(get.content)).toContain('NOT_FOUND');
    const update = await b.callTool({
      name: 'update_memory',
      arguments: { id: memoryA, content: 'taken over' },
    });
    expect(update.isError).toBe(true);
    await b.close();
    expect((await t.brain.services.memory.get({ tenantId: 'tenant-a' }, { id: memoryA })).content).toContain(
      'blue folder',
    );
  });

  it("does not let another principal use a session's id", async () => {
    const init = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${keys.readA}` },
      body: JSON.stringify(initializeBody('owner')),
    });
    expect(init.status).toBe(200);
    const session = init.headers.get('mcp-session-id') as string;
    await init.body?.cancel();
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
    const thief = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers: {
        ...MCP_HEADERS,
        authorization: `Bearer ${keys.allB}`,
        'mcp-session-id': session,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify(list),
    });
    expect(thief.status).toBe(404);
    await thief.body?.cancel();
  });
});
