/**
 * Where credentials come from: the static token, a JWKS, an OAuth authorization server (RFC 9728
 * metadata, audience = Brain's URL), API keys created while the server runs; OPA decisions; the admin
 * allow-list. Outside services are stand-ins (test/auth-stand-ins.ts).
 */
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuthorizationServerStandIn,
  type OpaStandIn,
  startAuthorizationServer,
  startOpa,
} from '../../../test/auth-stand-ins.js';
import { openTestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer, initializeBody, MCP_HEADERS } from '../../../test/test-http.js';
import { createApiKey } from '../../modules/auth/api-keys.js';
import type { HttpServer } from './http-server.js';

const logger = pino({ level: 'silent' });
const TOKEN = 'a-static-token-for-the-tests';

async function open(env: Record<string, string>) {
  const t = await openTestBrain('brain-auth-src-', { logger, env: { BRAIN_RATE_RPS: '0', ...env } });
  const http = await createTestHttpServer(t.brain, logger);
  return {
    t,
    http,
    inject: async (method: string, url: string, token?: string, payload?: object) => {
      const res = await http.app.inject({
        method: method as 'GET',
        url,
        headers: {
          ...(url === '/mcp' ? MCP_HEADERS : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(payload ? { payload } : {}),
      });
      return { status: res.statusCode, headers: res.headers, json: () => res.json() };
    },
    async close() {
      await http.close();
      await t.close();
    },
  };
}

describe('the static BRAIN_API_TOKEN', () => {
  let s: Awaited<ReturnType<typeof open>>;
  beforeAll(async () => {
    s = await open({ BRAIN_API_TOKEN: TOKEN });
  });
  afterAll(() => s.close());

  it('acts in the default tenant with every scope, and nothing else passes', async () => {
    const made = await s.inject('POST', '/v1/memories', TOKEN, { content: 'made with the static token' });
    expect(made.status).toBe(201);
    expect((await s.inject('GET', '/admin/maintenance', TOKEN)).status).toBe(200);
    expect((await s.inject('GET', '/v1/memories', `${TOKEN}x`)).status).toBe(401);
    expect((await s.inject('GET', '/v1/memories')).status).toBe(401);
    const listed = await s.t.brain.services.memory.list({ tenantId: 'default' }, {});
    expect(listed.items.map((m) => m.content)).toContain('made with the static token');
  });

  it('keeps health and the docs public', async () => {
    expect((await s.inject('GET', '/health/live')).status).toBe(200);
    expect((await s.inject('GET', '/openapi.json')).status).toBe(200);
    expect((await s.inject('GET', '/docs/')).status).toBe(200);
  });
});

describe('API keys created while the server runs', () => {
  let s: Awaited<ReturnType<typeof open>>;
  beforeAll(async () => {
    s = await open({});
  });
  afterAll(() => s.close());

  it('turn authentication on within a second, without a restart, and a revocation holds', async () => {
    expect((await s.inject('GET', '/v1/memories')).status).toBe(200); // off: the local caller
    const store = s.t.brain.storage.stores().apiKeys;
    const { key, record } = await createApiKey(store, { tenantId: 'default', scopes: ['read'] }, new Date());
    await new Promise((r) => setTimeout(r, 1100));
    expect((await s.inject('GET', '/v1/memories')).status).toBe(401);
    expect((await s.inject('GET', '/v1/memories', key)).status).toBe(200);
    await store.revoke(record.id, new Date().toISOString());
    await new Promise((r) => setTimeout(r, 1100));
    const revoked = await s.inject('GET', '/v1/memories', key);
    expect(revoked.status).toBe(401);
    expect(revoked.json().error.details.reason).toBe('revoked');
  });
});

describe('JWTs signed by a JWKS, and OAuth access tokens for MCP (RFC 9728)', () => {
  let as: AuthorizationServerStandIn;
  let s: Awaited<ReturnType<typeof open>>;
  const PUBLIC_URL = 'https://brain.example.test';
  beforeAll(async () => {
    as = await startAuthorizationServer();
    s = await open({ BRAIN_OAUTH_ISSUER: as.issuer, BRAIN_PUBLIC_URL: PUBLIC_URL });
  });
  afterAll(async () => {
    await s.close();
    await as.close();
  });

  it('answers an unauthenticated MCP request with 401 naming the protected-resource metadata', async () => {
    const res = await s.inject('POST', '/mcp', undefined, initializeBody('remote'));
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="brain", resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource"`,
    );
    const metadata = await s.inject('GET', '/.well-known/oauth-protected-resource');
    expect(metadata.status).toBe(200);
    expect(metadata.json()).toMatchObject({
      resource: PUBLIC_URL,
      authorization_servers: [as.issuer],
      bearer_methods_supported: ['header'],
    });
  });

  it("accepts the issuer's tokens for Brain's URL (found through its metadata) and refuses others", async () => {
    const good = await as.token({
      sub: 'remote-user',
      aud: `${PUBLIC_URL}/mcp`,
      scope: 'read write',
      tenant: 't-oauth',
    });
    const init = await s.inject('POST', '/mcp', good, initializeBody('remote'));
    expect(init.status).toBe(200);
    const rest = await s.inject('POST', '/v1/memories', good, { content: 'an OAuth-made memory' });
    expect(rest.status).toBe(201);
    const mine = await s.t.brain.services.memory.list({ tenantId: 't-oauth' }, {});
    expect(mine.items).toHaveLength(1);
    expect(as.jwksFetches()).toBeGreaterThan(0);

    const otherAudience = await as.token({ sub: 'remote-user', aud: 'https://other.example', scope: 'read' });
    const refused = await s.inject('GET', '/v1/memories', otherAudience);
    expect(refused.status).toBe(401);
    expect(refused.json().error.details.reason).toBe('bad_aud');
    const expired = await as.token(
      { sub: 'remote-user', aud: PUBLIC_URL, scope: 'read' },
      Math.floor(Date.now() / 1000) - 5,
    );
    expect((await s.inject('GET', '/v1/memories', expired)).json().error.details.reason).toBe('expired');
    const noScope = await as.token({ sub: 'remote-user', aud: PUBLIC_URL });
    expect((await s.inject('GET', '/v1/memories', noScope)).status).toBe(403);
  });
});

describe('OPA decisions', () => {
  let opa: OpaStandIn;
  let closed: Awaited<ReturnType<typeof open>>;
  let open_: Awaited<ReturnType<typeof open>>;
  beforeAll(async () => {
    opa = await startOpa();
    const env = { BRAIN_API_TOKEN: TOKEN, BRAIN_OPA_ENDPOINT: opa.endpoint, BRAIN_OPA_TIMEOUT_MS: '300' };
    closed = await open({ ...env, BRAIN_OPA_FAIL_CLOSED: 'true' });
    open_ = await open({ ...env, BRAIN_OPA_FAIL_CLOSED: 'false' });
  });
  afterEach(() => {
    opa.answer = 'allow';
  });
  afterAll(async () => {
    await closed.close();
    await open_.close();
    await opa.close();
  });

  it('asks OPA with the principal, tenant, action and scope, and follows its answer', async () => {
    expect((await closed.inject('POST', '/v1/memories/search', TOKEN, { query: 'x' })).status).toBe(200);
    expect(opa.inputs.at(-1)).toMatchObject({
      principal: { id: 'token', kind: 'token' },
      tenant: 'default',
      action: 'memory.recall',
      scope: 'read',
    });
    opa.answer = 'deny';
    const denied = await closed.inject('POST', '/v1/memories', TOKEN, { content: 'policy says no' });
    expect(denied.status).toBe(403);
    expect(denied.json().error.message).toMatch(/policy does not allow memory.remember/);
    expect((await closed.t.brain.services.memory.list({ tenantId: 'default' }, {})).total).toBe(0);
  });

  it('fails closed (503, nothing written) or open, as configured, when OPA does not answer', async () => {
    for (const answer of ['down', 'slow'] as const) {
      opa.answer = answer;
      const refused = await closed.inject('POST', '/v1/memories', TOKEN, {
        content: `while OPA is ${answer}`,
      });
      expect(refused.status, answer).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      const allowed = await open_.inject('POST', '/v1/memories', TOKEN, {
        content: `while OPA is ${answer}`,
      });
      expect(allowed.status, answer).toBe(201);
    }
    expect((await closed.t.brain.services.memory.list({ tenantId: 'default' }, {})).total).toBe(0);
  });
});

describe('the admin allow-list', () => {
  let s: Awaited<ReturnType<typeof open>>;
  let http: HttpServer;
  beforeAll(async () => {
    s = await open({ BRAIN_API_TOKEN: TOKEN, BRAIN_ADMIN_ALLOW: '10.0.0.0/8' });
    http = s.http;
  });
  afterAll(() => s.close());

  it('refuses /admin from an address outside it, even with the admin scope', async () => {
    const res = await http.app.inject({
      method: 'GET',
      url: '/admin/maintenance',
      headers: { authorization: `Bearer ${TOKEN}` },
      remoteAddress: '192.168.1.5',
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toContain('BRAIN_ADMIN_ALLOW');
    const inside = await http.app.inject({
      method: 'GET',
      url: '/admin/maintenance',
      headers: { authorization: `Bearer ${TOKEN}` },
      remoteAddress: '10.1.2.3',
    });
    expect(inside.statusCode).toBe(200);
    // Other routes do not care about the address.
    const other = await http.app.inject({
      method: 'GET',
      url: '/v1/memories',
      headers: { authorization: `Bearer ${TOKEN}` },
      remoteAddress: '192.168.1.5',
    });
    expect(other.statusCode).toBe(200);
  });
});
