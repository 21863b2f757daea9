/**
 * Stateless replicas: two `brain serve` processes on one PostgreSQL database, as behind a load balancer.
 * MCP runs stateless (BRAIN_MCP_MODE auto on PostgreSQL), so a client whose requests alternate between
 * the replicas works, and a write through one is recalled through the other at once. kill -9 of one
 * replica under a write load loses no acknowledged write, and the other keeps serving.
 */

import fs from 'node:fs';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../services/engines.js';
import { type ServingBrain, startServe, tempHome } from './brain-process.js';

const running: ServingBrain[] = [];
const closers: (() => Promise<void>)[] = [];
const homes: string[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => undefined);
  await Promise.all(running.splice(0).map((s) => s.stop('SIGKILL')));
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});

async function replicas(count: number): Promise<ServingBrain[]> {
  const url = newPostgresDatabase();
  // Started together: both migrate at once, and the advisory lock makes it happen once.
  const started = await Promise.all(
    Array.from({ length: count }, () => {
      const home = tempHome('brain-replica-');
      homes.push(home);
      return startServe({ BRAIN_HOME: home, BRAIN_DATABASE_URL: url, BRAIN_EMBEDDER: 'hash' });
    }),
  );
  running.push(...started);
  return started;
}

/** A round-robin balancer on 127.0.0.1: each request goes to the next replica. */
async function balancer(targets: string[]): Promise<{ url: string; served: number[] }> {
  const served = targets.map(() => 0);
  let next = 0;
  const server = http.createServer((req, res) => {
    const i = next++ % targets.length;
    served[i] = (served[i] ?? 0) + 1;
    const target = new URL(req.url ?? '/', targets[i]);
    const upstream = http.request(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, served };
}

async function mcpClient(url: string): Promise<Client> {
  const client = new Client({ name: 'replica-test', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
  closers.push(() => client.close());
  return client;
}

function structured<T>(result: unknown): T {
  return (result as { structuredContent: T }).structuredContent;
}

describe.skipIf(!postgresBaseUrl())(
  `replicas on one PostgreSQL${postgresBaseUrl() ? '' : ` (skipped: ${postgresSkipReason()})`}`,
  () => {
    it('serves one MCP client through two replicas alternately: a write through one is recalled through the other', async () => {
      const [a, b] = await replicas(2);
      const lb = await balancer([(a as ServingBrain).url, (b as ServingBrain).url]);
      const client = await mcpClient(lb.url);
      const written = structured<{ id: string }>(
        await client.callTool({
          name: 'remember',
          arguments: { content: 'The blue-green deploy switches at 02:00 UTC' },
        }),
      );
      for (let i = 0; i < 4; i++) {
        const found = structured<{ hits: { id: string }[] }>(
          await client.callTool({
            name: 'recall',
            arguments: { query: 'when does the blue-green deploy switch' },
          }),
        );
        expect(found.hits[0]?.id).toBe(written.id);
      }
      // Every request really alternated between the two replicas.
      expect(lb.served[0]).toBeGreaterThanOrEqual(3);
      expect(lb.served[1]).toBeGreaterThanOrEqual(3);
      const ready = await fetch(`${(b as ServingBrain).url}/health/ready`);
      expect(ready.status).toBe(200);
    });

    it('loses no acknowledged write when one replica is killed -9 under load; the other keeps serving', async () => {
      const [a, b] = await replicas(2);
      const [toA, toB] = [await mcpClient((a as ServingBrain).url), await mcpClient((b as ServingBrain).url)];
      const acknowledged: string[] = [];
      let failedOnA = 0;
      const writer = async (client: Client, name: string, count: number, onEach?: (i: number) => void) => {
        for (let i = 0; i < count; i++) {
          onEach?.(i);
          try {
            const r = structured<{ id: string }>(
              await client.callTool({
                name: 'remember',
                arguments: { content: `${name} write number ${i} of the load` },
              }),
            );
            acknowledged.push(r.id);
          } catch {
            if (name === 'a') failedOnA++;
          }
        }
      };
      let killed: Promise<number | null> | null = null;
      await Promise.all([
        writer(toA, 'a', 60, (i) => {
          if (i === 30) killed = (a as ServingBrain).stop('SIGKILL');
        }),
        writer(toB, 'b', 60),
      ]);
      await killed;
      expect(failedOnA).toBeGreaterThan(0); // the kill really cut A's writes off
      expect(acknowledged.length).toBeGreaterThanOrEqual(90);
      // Every acknowledged write is in the database, read through the surviving replica.
      for (const id of acknowledged) {
        const got = structured<{ id: string }>(await toB.callTool({ name: 'get_memory', arguments: { id } }));
        expect(got.id).toBe(id);
      }
      const after = structured<{ id: string }>(
        await toB.callTool({
          name: 'remember',
          arguments: { content: 'written after the other replica died' },
        }),
      );
      expect(after.id).toMatch(/^mem/);
    });
  },
);
