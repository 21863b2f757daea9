import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MCP_TOOL_NAMES } from '../../../test/mcp-tool-names.js';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import type { Brain } from '../../app/build-brain.js';
import { createMcpServer } from './mcp-server.js';

let fixture: TestBrain;
let brain: Brain;
let client: Client;

beforeAll(async () => {
  fixture = await openTestBrain('brain-mcp-', { logger: pino({ level: 'silent' }) });
  brain = fixture.brain;
  const server = createMcpServer({ services: brain.services, scope: brain.scope, version: brain.version });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  client = new Client({ name: 'mcp-server-test', version: '0.0.0' });
  await client.connect(clientTransport);
});

afterAll(async () => {
  await client?.close();
  await fixture?.close();
});

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function textOf(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

async function ok<T>(name: string, args: Record<string, unknown>): Promise<{ data: T; text: string }> {
  const result = await call(name, args);
  expect(result.isError, textOf(result)).toBeFalsy();
  return { data: result.structuredContent as T, text: textOf(result) };
}

async function memoryCount(): Promise<number> {
  return (await ok<{ total: number }>('list_memories', {})).data.total;
}

describe('MCP server', () => {
  it('introduces itself as brain with instructions that say to call init first', () => {
    expect(client.getServerVersion()).toMatchObject({ name: 'brain', version: brain.version });
    expect(client.getInstructions()).toMatch(/init first/);
  });

  it('lists every tool with input and output schemas and annotations', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(MCP_TOOL_NAMES);
    for (const tool of tools) {
      expect(tool.description?.length, tool.name).toBeGreaterThan(80);
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type, tool.name).toBe('object');
      expect(tool.annotations?.openWorldHint, tool.name).toBe(false);
    }
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const name of ['recall', 'get_memory', 'list_memories']) {
      expect(byName.get(name)?.annotations?.readOnlyHint).toBe(true);
    }
    expect(byName.get('remember')?.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: false,
    });
    expect(byName.get('update_memory')?.annotations).toMatchObject({
      destructiveHint: true,
      idempotentHint: true,
    });
    expect(byName.get('forget')?.annotations).toMatchObject({ destructiveHint: true, idempotentHint: true });
    expect(byName.get('init')?.annotations).toMatchObject({ readOnlyHint: false, idempotentHint: false });
    const remember = byName.get('remember');
    expect(remember?.inputSchema.required).toEqual(['content']);
    expect(remember?.description).toMatch(/64 KiB/);
    expect(byName.get('recall')?.inputSchema.properties?.k).toMatchObject({ minimum: 1, maximum: 100 });
    expect(byName.get('execute')?.inputSchema.required).toEqual(['code']);
    expect(byName.get('execute')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(byName.get('get_execution')?.inputSchema.required).toEqual(['id']);
  });

  it('keeps tool definitions small, with a description on every argument', async () => {
    const { tools } = await client.listTools();
    const sizes = tools.map((t) =>
      Buffer.byteLength(
        JSON.stringify({ name: t.name, description: t.description, inputSchema: t.inputSchema }),
      ),
    );
    const total = sizes.reduce((a, b) => a + b, 0);
    // What a model reads of each tool: 13.5 KB for seven tools before; the budget is 1,200 a tool, and
    // 1,450 for the one with the most arguments (recall: twelve, with in_session).
    expect(total / tools.length).toBeLessThanOrEqual(1200);
    for (const [i, tool] of tools.entries()) expect(sizes[i], tool.name).toBeLessThanOrEqual(1450);
    const undescribed: string[] = [];
    const visit = (name: string, schema: Record<string, unknown>) => {
      const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [key, property] of Object.entries(properties)) {
        const path = `${name}.${key}`;
        if (typeof property.description !== 'string' || property.description.length < 5)
          undescribed.push(path);
        // A long regex (zod's ISO date pattern is 400 characters) is bytes a model pays for in every call.
        expect(String(property.pattern ?? '').length, path).toBeLessThan(64);
        visit(path, property);
      }
    };
    for (const tool of tools) visit(tool.name, tool.inputSchema as Record<string, unknown>);
    expect(undescribed).toEqual([]);
  });

  it('answers get_memory and list_memories in bounded text, whatever the metadata nests', async () => {
    let metadata: Record<string, unknown> = { leaf: 'x'.repeat(100) };
    for (let i = 1; i < 16; i++) metadata = { level: metadata, [`k${i}`]: i };
    const { data } = await ok<{ id: string }>('remember', { content: 'Nested metadata holder', metadata });
    const got = await ok<{ metadata: unknown }>('get_memory', { id: data.id });
    expect(got.data.metadata).toEqual(metadata);
    expect(got.text.length).toBeLessThan(2 * JSON.stringify(got.data).length);
    const listed = await call('list_memories', { limit: 200 });
    expect(JSON.stringify(listed).length).toBeLessThan(4 * 1024 * 1024);
  });

  it('remembers a fact and recalls it, with the content, id and score in the text', async () => {
    const content = 'The user prefers dark roast coffee from Ethiopia';
    const remembered = await ok<{ id: string; status: string }>('remember', {
      content,
      type: 'preference',
      tags: ['coffee'],
    });
    expect(remembered.data.status).toBe('created');
    expect(remembered.data.id).toMatch(/^mem_/);

    const recalled = await ok<{ mode: string; hits: { id: string; content: string }[] }>('recall', {
      query: 'coffee roast',
    });
    expect(recalled.data.hits[0]?.id).toBe(remembered.data.id);
    expect(recalled.text).toContain(content);
    expect(recalled.text).toMatch(
      new RegExp(`1\\. \\[${remembered.data.id}\\] \\(preference, score \\d\\.\\d\\d`),
    );
  });

  it('records episodes, blends them into recall in their session, and consolidates them at end_session', async () => {
    const { data: init } = await ok<{ session_id: string }>('init', {});
    const session_id = init.session_id;
    const recorded = await ok<{ episode: { id: string; seq: number } }>('record_episode', {
      session_id,
      role: 'user',
      content: 'I prefer the harbour walk route',
    });
    expect(recorded.data.episode.seq).toBe(1);
    expect(recorded.text).toContain(recorded.data.episode.id);
    const listed = await ok<{ episodes: { content: string }[] }>('list_episodes', { session_id });
    expect(listed.data.episodes.map((e) => e.content)).toEqual(['I prefer the harbour walk route']);
    const recalled = await ok<{ episodes: { id: string }[] }>('recall', {
      query: 'harbour walk',
      session: session_id,
    });
    expect(recalled.data.episodes?.map((e) => e.id)).toEqual([recorded.data.episode.id]);
    expect(recalled.text).toContain('Recent in this session:');
    const ended = await ok<{ consolidated: { memory_id: string; reason: string }[] }>('end_session', {
      session_id,
    });
    expect(ended.data.consolidated).toEqual([
      {
        memory_id: expect.stringMatching(/^mem_/),
        reason: 'preference',
        episode_ids: [recorded.data.episode.id],
      },
    ]);
    const memory = await ok<{ type: string }>('get_memory', { id: ended.data.consolidated[0]?.memory_id });
    expect(memory.data.type).toBe('user_preferences');
    const bad = await call('record_episode', { session_id, role: 'narrator', content: 'x' });
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toMatch(/role/);
  });

  it('round-trips get_memory, list_memories, update_memory and forget', async () => {
    const { data: created } = await ok<{ id: string }>('remember', {
      content: 'Project Falcon ships in May',
    });
    const got = await ok<{ id: string; content: string; type: string }>('get_memory', { id: created.id });
    expect(got.data).toMatchObject({ id: created.id, content: 'Project Falcon ships in May', type: 'fact' });
    expect(got.text).toContain(created.id);

    const listed = await ok<{ items: { id: string }[]; total: number }>('list_memories', { limit: 200 });
    expect(listed.data.items.map((m) => m.id)).toContain(created.id);

    const updated = await ok<{ content: string; importance: number }>('update_memory', {
      id: created.id,
      content: 'Project Falcon ships in June',
      importance: 0.9,
    });
    expect(updated.data).toMatchObject({ content: 'Project Falcon ships in June', importance: 0.9 });
    expect((await ok<{ content: string }>('get_memory', { id: created.id })).data.content).toBe(
      'Project Falcon ships in June',
    );

    const before = await memoryCount();
    const forgotten = await ok<{ forgotten: number; ids: string[] }>('forget', { id: created.id });
    expect(forgotten.data).toMatchObject({ forgotten: 1, ids: [created.id] });
    expect(await memoryCount()).toBe(before - 1);
    const gone = await call('get_memory', { id: created.id });
    expect(gone.isError).toBe(true);
    expect(textOf(gone)).toMatch(/NOT_FOUND/);
  });

  it('init opens a session and packs the important memories within budget_chars', async () => {
    const { data: important } = await ok<{ id: string }>('remember', {
      content: 'Always answer the user in British English',
      type: 'instruction',
      importance: 1,
    });
    for (let i = 0; i < 30; i++) {
      await ok('remember', { content: `Filler memory number ${i}: ${'x'.repeat(60)}`, importance: 0.1 });
    }
    const init = await ok<{
      session_id: string;
      important: { id: string }[];
      recent: { id: string }[];
      used_chars: number;
      budget_chars: number;
      truncated: boolean;
    }>('init', { budget_chars: 600, client: 'vitest' });
    expect(init.data.session_id).toMatch(/\S/);
    expect(init.data.budget_chars).toBe(600);
    expect(init.data.used_chars).toBeLessThanOrEqual(600);
    expect(init.data.important[0]?.id).toBe(important.id);
    expect(init.data.truncated).toBe(true);
    expect(init.text).toContain('Always answer the user in British English');
    expect(init.text).toContain(init.data.session_id);

    const resumed = await ok<{ session_id: string; resumed: boolean }>('init', {
      session_id: init.data.session_id,
    });
    expect(resumed.data).toMatchObject({ session_id: init.data.session_id, resumed: true });
  });
});

describe('MCP bad input', () => {
  const big = 'a'.repeat(64 * 1024 + 1);
  const tags65 = Array.from({ length: 65 }, (_, i) => `tag${i}`);
  const unknownId = `mem_${'0'.repeat(26)}`;

  // Each case: tool, arguments, and what the error text must say (the field and its limit).
  const cases: [string, string, Record<string, unknown>, (RegExp | string)[]][] = [
    ['empty content', 'remember', { content: '   ' }, [/content/, /must not be empty/]],
    ['content over 64 KiB', 'remember', { content: big }, [/content/, /65536 bytes/]],
    ['65 tags', 'remember', { content: 'x', tags: tags65 }, [/tags/, /at most 64 tags/]],
    ['content of the wrong type', 'remember', { content: 42 }, [/content/, /must be a string/]],
    [
      'importance out of range',
      'remember',
      { content: 'x', importance: 2 },
      [/importance/, /between 0 and 1/],
    ],
    ['an unknown argument', 'remember', { content: 'x', colour: 'red' }, [/colour/]],
    [
      'ttl_seconds with expires_at',
      'remember',
      { content: 'x', ttl_seconds: 60, expires_at: '2030-01-01T00:00:00Z' },
      [/ttl_seconds/, /not both/],
    ],
    ['k 0', 'recall', { query: 'coffee', k: 0 }, [/\bk\b/, /from 1 to 100/]],
    ['k 101', 'recall', { query: 'coffee', k: 101 }, [/\bk\b/, /from 1 to 100/]],
    ['k of the wrong type', 'recall', { query: 'coffee', k: 'ten' }, [/\bk\b/, /must be a number/]],
    ['malformed id', 'get_memory', { id: 'abc' }, [/\bid\b/, /mem_/]],
    ['unknown id', 'get_memory', { id: unknownId }, [/NOT_FOUND/, unknownId, /recall/, /list_memories/]],
    [
      'update with id and key',
      'update_memory',
      { id: unknownId, key: 'k', importance: 1 },
      [/exactly one of id or key/],
    ],
    [
      'update of an unknown id',
      'update_memory',
      { id: unknownId, importance: 1 },
      [/NOT_FOUND/, /list_memories/],
    ],
    ['forget with nothing', 'forget', {}, [/exactly one of id, key, filter or all/]],
    [
      'forget by a filter that adds no condition',
      'forget',
      { filter: { tags: [] }, hard: true },
      [/filter/, /selects every memory/, /all: true/],
    ],
    [
      'an expiry in the past',
      'remember',
      { content: 'x', expires_at: '2020-01-01T00:00:00Z' },
      [/expires_at/, /must be in the future/],
    ],
    [
      'metadata nested too deep',
      'remember',
      { content: 'x', metadata: JSON.parse(`${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`) },
      [/metadata/, /at most 16 levels/],
    ],
    [
      'a lone surrogate in content',
      'remember',
      { content: 'lone \ud800 high' },
      [/content/, /lone surrogate/],
    ],
    ['a lone surrogate in a tag', 'remember', { content: 'x', tags: ['\udfff'] }, [/tags/, /lone surrogate/]],
    ['init budget too small', 'init', { budget_chars: 10 }, [/budget_chars/, /from 500 to 200000/]],
  ];

  it.each(cases)(
    '%s is an isError result naming the field and limit, and writes nothing',
    async (_, tool, args, expected) => {
      const before = await memoryCount();
      const result = await call(tool, args);
      expect(result.isError).toBe(true);
      expect(result.structuredContent).toBeUndefined();
      const text = textOf(result);
      for (const pattern of expected) {
        if (typeof pattern === 'string') expect(text).toContain(pattern);
        else expect(text).toMatch(pattern);
      }
      expect(text).not.toMatch(/\bat [\w./]+:\d+:\d+/); // no stack frames
      expect(await memoryCount()).toBe(before);
    },
  );

  it('says what to do next for invalid input that reaches the service', async () => {
    const result = await call('update_memory', { id: unknownId });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/^\[INVALID_INPUT\] update_memory was not run/);
    expect(textOf(result)).toMatch(/give at least one field to change/);
    expect(result._meta?.['brain/error']).toMatchObject({ code: 'INVALID_INPUT' });
  });
});
