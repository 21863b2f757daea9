/**
 * `brain serve` as an operator runs it: refusals in production, API keys from the CLI turning
 * authentication on over a real port, and several worker processes on one store.
 */
import fs from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { runBrain, type ServingBrain, startServe, tempHome } from './brain-process.js';

const homes: string[] = [];
const servers: ServingBrain[] = [];

function home(): string {
  const dir = tempHome('brain-serve-security-');
  homes.push(dir);
  return dir;
}

afterEach(async () => {
  for (const s of servers.splice(0)) if (s.child.exitCode === null) await s.stop('SIGKILL');
  for (const dir of homes.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('brain serve refuses unsafe production settings', () => {
  it('without authentication, or with a development secret, naming what to change', async () => {
    const dir = home();
    const none = await runBrain(['serve', '--port', '0'], { BRAIN_HOME: dir, NODE_ENV: 'production' });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/refuses to start/);
    expect(none.stderr).toMatch(
      /NODE_ENV=production needs authentication: create a key with `brain keys create/,
    );
    const dev = await runBrain(['serve', '--port', '0'], {
      BRAIN_HOME: dir,
      NODE_ENV: 'production',
      BRAIN_API_TOKEN: 'token-CHANGE_IN_PRODUCTION',
    });
    expect(dev.code).toBe(1);
    expect(dev.stderr).toMatch(/BRAIN_API_TOKEN is still a development value/);
    expect(dev.stderr).not.toContain('token-CHANGE_IN_PRODUCTION');
  });
});

describe('API keys over a real port', () => {
  it('a key made with `brain keys create` is required from then on, and `brain keys revoke` ends it', async () => {
    const dir = home();
    const server = await startServe({ BRAIN_HOME: dir, BRAIN_RATE_RPS: '0' });
    servers.push(server);
    expect((await fetch(`${server.url}/v1/memories`)).status).toBe(200); // no key yet: local
    const created = await runBrain(
      ['keys', 'create', '--tenant', 'ops', '--scopes', 'read,write', '--json'],
      {
        BRAIN_HOME: dir,
      },
    );
    expect(created.code, created.stderr).toBe(0);
    const { key, record } = JSON.parse(created.stdout) as { key: string; record: { id: string } };
    const id = record.id;
    await new Promise((r) => setTimeout(r, 1200));
    expect((await fetch(`${server.url}/v1/memories`)).status).toBe(401);
    const write = await fetch(`${server.url}/v1/memories`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'written with a CLI-made key' }),
    });
    expect(write.status).toBe(201);
    const revoked = await runBrain(['keys', 'revoke', id], { BRAIN_HOME: dir });
    expect(revoked.code, revoked.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1200));
    expect(
      (await fetch(`${server.url}/v1/memories`, { headers: { authorization: `Bearer ${key}` } })).status,
    ).toBe(401);
    const audit = await runBrain(['audit', '--tenant', 'ops', '--json'], { BRAIN_HOME: dir });
    const actions = (JSON.parse(audit.stdout) as { action: string }[]).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['key.create', 'key.revoke', 'memory.remember']));
  });
});

describe('a server that serves other machines', () => {
  it('keeps authentication on once its last key is revoked: every caller gets 401, none is let in', async () => {
    const dir = home();
    const created = await runBrain(
      ['keys', 'create', '--tenant', 'ops', '--scopes', 'read,write', '--json'],
      {
        BRAIN_HOME: dir,
      },
    );
    expect(created.code, created.stderr).toBe(0);
    const { record } = JSON.parse(created.stdout) as { record: { id: string } };
    // With a key at start it binds every address; it is reached here only through 127.0.0.1.
    const server = await startServe({ BRAIN_HOME: dir, BRAIN_RATE_RPS: '0', BRAIN_HOST: '0.0.0.0' });
    servers.push(server);
    const url = server.url.replace('//0.0.0.0:', '//127.0.0.1:');
    expect((await fetch(`${url}/v1/memories`)).status).toBe(401);
    const revoked = await runBrain(['keys', 'revoke', record.id], { BRAIN_HOME: dir });
    expect(revoked.code, revoked.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1200));
    // No active key is left: a loopback-only server would be open again; this one is not.
    const list = await fetch(`${url}/v1/memories`);
    expect(list.status).toBe(401);
    const write = await fetch(`${url}/v1/memories`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'must not be stored' }),
    });
    expect(write.status).toBe(401);
  });
});

describe('brain serve with BRAIN_WORKERS=2', () => {
  it('serves from two processes on one store and drains both on SIGTERM', async () => {
    const dir = home();
    const token = 'a-token-for-the-workers-test';
    const server = await startServe({
      BRAIN_HOME: dir,
      BRAIN_WORKERS: '2',
      BRAIN_API_TOKEN: token,
      BRAIN_RATE_RPS: '0',
    });
    servers.push(server);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const answeredBy = () =>
      new Set(
        server
          .logs()
          .split('\n')
          .filter((line) => line.includes('"url":"/v1/memories"'))
          .map((line) => (JSON.parse(line) as { pid: number }).pid),
      );
    // A connection each (no keep-alive), so that the primary hands them out to both workers; in rounds
    // of 20 until both have answered (a worker that started late gets none of the first round).
    let pids = new Set<number>();
    let sent = 0;
    for (let i = 0; i < 200 && pids.size < 2; i++) {
      sent++;
      const status = await new Promise<number>((resolve, reject) => {
        const request = http.request(
          `${server.url}/v1/memories`,
          { method: 'POST', headers, agent: false },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        request.on('error', reject);
        request.end(JSON.stringify({ content: `worker fact number ${i}` }));
      });
      expect(status).toBe(201);
      if (i % 20 === 19) {
        await new Promise((r) => setTimeout(r, 100));
        pids = answeredBy();
      }
    }
    // Both workers answered: their request lines carry two pids.
    expect(pids.size).toBe(2);
    const stopping = Date.now();
    expect(await server.stop('SIGTERM')).toBe(0);
    // The workers end by themselves once drained: the primary never has to kill them.
    expect(Date.now() - stopping).toBeLessThan(8000);
    expect(server.logs()).not.toContain('workers did not stop in time');
    expect(server.logs()).toMatch(/"codes":\[0,0\],"msg":"stopped"/);
    const list = await runBrain(['list', '--json'], { BRAIN_HOME: dir });
    expect(JSON.parse(list.stdout)).toMatchObject({ total: sent });
  });
});

describe('SIGTERM with requests in flight', () => {
  it('answers or refuses each request, and every acknowledged write is in the store afterwards', async () => {
    const dir = home();
    const server = await startServe({ BRAIN_HOME: dir, BRAIN_RATE_RPS: '0' });
    servers.push(server);
    const send = (i: number) =>
      fetch(`${server.url}/v1/memories`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ content: `in-flight fact ${i}` }),
      }).then(async (res) => ({ status: res.status, body: (await res.json()) as { id?: string } }));
    const requests = Array.from({ length: 300 }, (_, i) => send(i));
    // SIGTERM once the first write is answered, with the rest in flight: a fixed delay raced the
    // connections opening on a slow machine, and then no request had reached the server at all.
    await Promise.any(requests);
    const exit = server.stop('SIGTERM');
    const outcomes = await Promise.allSettled(requests);
    expect(await exit).toBe(0);
    const acknowledged = outcomes.flatMap((o) =>
      o.status === 'fulfilled' && o.value.status === 201 ? [o.value.body.id] : [],
    );
    // Nothing was answered with a server error: a request was either served or never accepted.
    const statuses = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.status] : []));
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    expect(acknowledged.length).toBeGreaterThan(0);
    const stored = new Set<string>();
    for (let offset = 0; ; offset += 200) {
      const page = await runBrain(['list', '--json', '--limit', '200', '--offset', String(offset)], {
        BRAIN_HOME: dir,
      });
      const items = (JSON.parse(page.stdout) as { items: { id: string }[] }).items;
      for (const m of items) stored.add(m.id);
      if (items.length < 200) break;
    }
    expect(acknowledged.filter((id) => !stored.has(id as string))).toEqual([]);
  });
});
