/**
 * A server that must not run code: BRAIN_SANDBOX=none under NODE_ENV=production. Execute is refused
 * with the reason on every face, nothing is queued, no worker starts, and /health says why while the
 * rest of Brain works.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthDocument } from '../src/app/health-document.js';
import { createMcpServer } from '../src/surfaces/mcp/mcp-server.js';
import { openTestBrain, type TestBrain } from './test-brain.js';

let t: TestBrain;

beforeAll(async () => {
  t = await openTestBrain('brain-exec-off-', { env: { BRAIN_SANDBOX: 'none', NODE_ENV: 'production' } });
});

afterAll(async () => {
  await t?.close();
});

describe('execution refused: BRAIN_SANDBOX=none in production', () => {
  it('refuses execute with UNAVAILABLE saying what to change, and queues nothing', async () => {
    const { brain } = t;
    await expect(brain.services.executions.execute(brain.scope, { code: 'print(1)' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(
        /BRAIN_SANDBOX=none is refused when NODE_ENV=production: install bubblewrap/,
      ),
    });
    // Bad input is still named first: the caller learns about its own mistake too.
    await expect(brain.services.executions.execute(brain.scope, { code: '' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
    const counts = await brain.storage.stores().executions.counts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
    expect(brain.startExecutionWorkers()).toBe(false);
    expect(brain.executions.running).toBe(false);
  });

  it('tells an MCP client that retrying will not help', async () => {
    const { brain } = t;
    const server = createMcpServer({ services: brain.services, scope: brain.scope, version: brain.version });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    await server.connect(serverTransport);
    const client = new Client({ name: 'unavailable', version: '0' });
    await client.connect(clientTransport);
    const result = await client.callTool({ name: 'execute', arguments: { code: 'print(1)' } });
    expect(result.isError).toBe(true);
    const text = (result.content as { text: string }[])[0]?.text ?? '';
    expect(text).toMatch(
      /^\[UNAVAILABLE\] execute is not available on this server: .*BRAIN_SANDBOX=none is refused/,
    );
    expect(text).toMatch(/retrying will not help/);
    await client.close();
  });

  it('reports execution unavailable in /health, which stays ok otherwise', async () => {
    const doc = await healthDocument(t.brain);
    expect(doc.checks.execution).toMatchObject({ status: 'warn' });
    expect(doc.checks.execution?.message).toMatch(/^unavailable: BRAIN_SANDBOX=none is refused/);
    expect(doc.status).toBe('ok');
    expect(doc.workers).toEqual([]);
  });
});
