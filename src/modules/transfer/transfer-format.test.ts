import { describe, expect, it } from 'vitest';
import { contentHash } from '../memory/content-hash.js';
import { detectFormat } from './detect-format.js';
import {
  EXPORT_VERSION,
  type ExportRecord,
  endLine,
  headerLine,
  memoryLine,
  sessionLine,
} from './export-format.js';
import { derivedMemoryId, disabledKeyRecord, type ImportTarget } from './imported-memory.js';
import { readLines } from './json-lines.js';
import { readMcpMemory } from './mcp-memory-format.js';
import { parseMem0 } from './mem0-format.js';
import { readExport } from './read-export.js';
import type { StoredApiKey, StoredMemory } from './transfer-records.js';
import { vectorFromBase64, vectorToBase64 } from './vector-base64.js';

const NOW = '2026-06-01T12:00:00.000Z';

function memory(over: Partial<StoredMemory> = {}): StoredMemory {
  const content = over.content ?? 'The staging database listens on port 5433';
  return {
    id: 'mem_01jx0000000000000000000001',
    tenant_id: 'default',
    project: null,
    session_id: null,
    key: null,
    content,
    content_hash: contentHash(content),
    type: 'fact',
    tags: ['infra'],
    metadata: { source: 'test', nested: { a: [1, 2] } },
    importance: 0.5,
    storage_tier: 'hot',
    memory_score: 0.5,
    access_count: 2,
    created_at: NOW,
    updated_at: NOW,
    accessed_at: null,
    expires_at: null,
    valid_from: null,
    valid_to: null,
    superseded_by: null,
    deleted_at: null,
    search_text: 'stage databas listen port 5433 infra',
    context_text: '',
    speaker_text: '',
    embedding_model: 'test-model',
    embedding: Float32Array.from({ length: 8 }, (_, i) => (i - 3.5) / 4),
    queued: false,
    ...over,
  };
}

const header = () =>
  headerLine({
    schema: 9,
    engine: 'sqlite',
    brain: '0.1.0',
    exported_at: NOW,
    filter: { tenant: null, project: null },
  });

async function read(lines: string[]) {
  const records: ExportRecord[] = [];
  const summary = await readExport([`${lines.join('\n')}\n`], (r) => {
    records.push(...r);
  });
  return { summary, records };
}

describe('the Brain export format', () => {
  it('writes a memory as one line and reads back every column, the vector exactly', async () => {
    const m = memory();
    const { records, summary } = await read([header(), memoryLine(m), endLine({ memory: 1 })]);
    expect(summary.counts.memory).toBe(1);
    expect(records).toEqual([{ kind: 'memory', record: m }]);
    const line = JSON.parse(memoryLine(m)) as Record<string, unknown>;
    expect(line.kind).toBe('memory');
    expect(line.embedding).toMatchObject({ model: 'test-model', dimensions: 8 });
  });

  it('skips kinds it does not know, counting them, and reads the rest', async () => {
    const { records, summary } = await read([
      header(),
      JSON.stringify({ kind: 'note', id: 'n1', title: 'from a later Brain' }),
      memoryLine(memory()),
      JSON.stringify({ kind: 'note', id: 'n2' }),
      endLine({ memory: 1, note: 2 }),
    ]);
    expect(records).toHaveLength(1);
    expect(summary.skipped).toEqual({ note: 2 });
  });

  it('refuses a newer format version, naming it', async () => {
    const newer = JSON.stringify({ ...JSON.parse(header()), version: EXPORT_VERSION + 1 });
    await expect(read([newer, endLine({})])).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/^line 1: version: this file is Brain export format version 2, newer/),
    });
  });

  it('names the line and the field of a bad record', async () => {
    const bad = JSON.stringify({ ...JSON.parse(memoryLine(memory())), importance: 7 });
    await expect(
      read([header(), memoryLine(memory()), '', bad, endLine({ memory: 2 })]),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: 'line 4: importance: must be between 0 and 1',
      details: { line: 4 },
    });
    const edited = JSON.stringify({ ...JSON.parse(memoryLine(memory())), content: 'changed by hand' });
    await expect(read([header(), edited, endLine({ memory: 1 })])).rejects.toMatchObject({
      message: expect.stringMatching(/^line 2: content_hash: does not match the content/),
    });
    const vector = JSON.parse(memoryLine(memory())) as { embedding: { dimensions: number } };
    vector.embedding.dimensions = 9;
    await expect(read([header(), JSON.stringify(vector), endLine({ memory: 1 })])).rejects.toMatchObject({
      message: 'line 2: embedding.float32: must hold 9 float32 values (36 bytes), not 32 bytes',
    });
    await expect(read([header(), '{"kind":"memory",', endLine({ memory: 1 })])).rejects.toMatchObject({
      message: expect.stringMatching(/^line 2: is not JSON/),
    });
    const extra = JSON.stringify({ ...JSON.parse(sessionLine(session())), color: 'red' });
    await expect(read([header(), extra, endLine({ session: 1 })])).rejects.toMatchObject({
      message: expect.stringMatching(/^line 2: session: unknown field\(s\) color/),
    });
  });

  it('refuses a file cut short (no end line) or whose end line disagrees', async () => {
    await expect(read([header(), memoryLine(memory())])).rejects.toMatchObject({
      message: expect.stringMatching(/^line 3: the file ends without its end line/),
    });
    await expect(read([header(), memoryLine(memory()), endLine({ memory: 2 })])).rejects.toMatchObject({
      message: expect.stringMatching(
        /^line 3: counts\.memory: the end line states 2 memory records but the file holds 1/,
      ),
    });
    await expect(read([memoryLine(memory())])).rejects.toMatchObject({
      message: expect.stringMatching(/^line 1: kind: must be "brain-export"/),
    });
  });

  it('keeps a purged tombstone (no content) but refuses empty content on a live memory', async () => {
    const purged = memory({ content: '', content_hash: '', deleted_at: NOW, tags: [], search_text: '' });
    const { records } = await read([header(), memoryLine(purged), endLine({ memory: 1 })]);
    expect(records[0]?.record).toMatchObject({ content: '', deleted_at: NOW });
    const live = memory({ content: '', content_hash: '' });
    await expect(read([header(), memoryLine(live), endLine({ memory: 1 })])).rejects.toMatchObject({
      message: expect.stringMatching(/^line 2: content: must not be empty/),
    });
  });
});

function session() {
  return {
    tenant_id: 'default',
    id: 'ses-1',
    project: null,
    client: 'test',
    created_at: NOW,
    last_seen_at: NOW,
  };
}

describe('vectors in base64', () => {
  it('round-trip float32 exactly and refuse a wrong length or non-finite values', () => {
    const v = Float32Array.from([0.1, -0.2, 3.5, 1e-8]);
    expect(vectorFromBase64(vectorToBase64(v), 4)).toEqual(v);
    expect(vectorFromBase64(vectorToBase64(v), 5)).toMatch(/must hold 5 float32 values/);
    expect(vectorFromBase64(vectorToBase64(Float32Array.from([Number.NaN])), 1)).toMatch(
      /not a finite number/,
    );
    expect(vectorFromBase64('not base64!', 1)).toMatch(/must be base64/);
  });
});

describe('reading lines', () => {
  it('splits across chunks, numbers lines, and refuses a line over the limit', async () => {
    const seen: string[] = [];
    for await (const lines of readLines(['{"a":', '1}\r\n{"b"', ':2}\n', '{"c":3}'], 100))
      for (const l of lines) seen.push(`${l.number}:${l.text}`);
    expect(seen).toEqual(['1:{"a":1}', '2:{"b":2}', '3:{"c":3}']);
    const long = async () => {
      for await (const _ of readLines(['x'.repeat(50), 'y'.repeat(60), '\n'], 100));
    };
    await expect(long()).rejects.toMatchObject({
      message: expect.stringMatching(/^line 1: is longer than 100 bytes/),
    });
    const latin1 = async () => {
      for await (const _ of readLines([Buffer.from([0x7b, 0xff, 0x7d, 0x0a])], 100));
    };
    await expect(latin1()).rejects.toMatchObject({ message: 'line 1: is not valid UTF-8 text' });
  });
});

describe('format detection', () => {
  it('tells the three formats apart and asks for --format otherwise', () => {
    expect(detectFormat(`${header()}\n`)).toBe('brain');
    expect(detectFormat('{"type":"entity","name":"a","entityType":"b","observations":[]}\n')).toBe(
      'mcp-memory',
    );
    expect(detectFormat('[{"id":"1","memory":"x"}]')).toBe('mem0');
    expect(detectFormat('{\n  "results": [\n')).toBe('mem0');
    expect(() => detectFormat('id,content\n1,hello\n')).toThrow(
      /cannot tell the input's format.*--format brain\|mcp-memory\|mem0/,
    );
  });
});

const TARGET: ImportTarget = { tenant: undefined, defaultTenant: 'default', project: null, now: NOW };

describe('the MCP memory server file', () => {
  const file = [
    '{"type":"entity","name":"John_Smith","entityType":"person","observations":["Speaks fluent Spanish","Graduated in 2019"]}',
    '{"type":"entity","name":"Anthropic","entityType":"organization","observations":[]}',
    '{"type":"relation","from":"John_Smith","to":"Anthropic","relationType":"works_at"}',
  ].join('\n');

  it('makes each observation, bare entity and relation a memory, with ids that do not change', async () => {
    const read = async (target = TARGET) => {
      const all: Awaited<ReturnType<typeof parseMem0>> = [];
      const summary = await readMcpMemory([file], target, (m) => {
        all.push(...m);
      });
      return { all, summary };
    };
    const { all, summary } = await read();
    expect(summary).toEqual({ entities: 2, relations: 1, observations: 2, skipped: {} });
    expect(all.map((m) => m.content)).toEqual([
      'John_Smith: Speaks fluent Spanish',
      'John_Smith: Graduated in 2019',
      'Anthropic is a organization',
      'John_Smith works_at Anthropic',
    ]);
    expect(all[0]).toMatchObject({
      tenant_id: 'default',
      tags: ['mcp-memory', 'entity:John_Smith'],
      metadata: { source: 'mcp-memory', entity: 'John_Smith', entity_type: 'person' },
    });
    expect(all[3]?.metadata).toEqual({
      source: 'mcp-memory',
      relation: { from: 'John_Smith', type: 'works_at', to: 'Anthropic' },
    });
    const again = await read({ ...TARGET, now: '2027-01-01T00:00:00.000Z' });
    expect(again.all.map((m) => m.id)).toEqual(all.map((m) => m.id));
    const elsewhere = await read({ ...TARGET, tenant: 'other' });
    expect(elsewhere.all[0]?.id).not.toBe(all[0]?.id);
    expect(elsewhere.all[0]?.tenant_id).toBe('other');
  });

  it('names the line and field of a bad line', async () => {
    const bad = `${file}\n{"type":"entity","name":"x","entityType":"y","observations":["ok", 5]}`;
    await expect(readMcpMemory([bad], TARGET, () => undefined)).rejects.toMatchObject({
      message: 'line 4: observations.1: must be a string',
    });
    const big = `{"type":"entity","name":"x","entityType":"y","observations":["${'a'.repeat(70_000)}"]}`;
    await expect(readMcpMemory([big], TARGET, () => undefined)).rejects.toMatchObject({
      message: expect.stringMatching(/^line 1: observations\.0: must be at most 65536 bytes/),
    });
  });
});

describe('a mem0 export', () => {
  const results = [
    {
      id: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
      memory: 'Prefers vegetarian food',
      user_id: 'alice',
      hash: '1b3f',
      metadata: { source: 'chat' },
      categories: ['food', 'preferences'],
      created_at: '2024-07-20T01:12:43.253447-07:00',
      updated_at: '2024-07-21T09:00:00Z',
      owner: 'ignored',
    },
    { id: 'b7e1', memory: 'Works on the billing service', agent_id: 'helper', created_at: null },
  ];

  it('maps users to tenants, categories to tags, and keeps times and ids', () => {
    const [a, b] = parseMem0(JSON.stringify({ results }), TARGET);
    expect(a).toMatchObject({
      tenant_id: 'alice',
      content: 'Prefers vegetarian food',
      tags: ['mem0', 'user:alice', 'food', 'preferences'],
      metadata: { source: 'chat', mem0: { id: results[0]?.id, user_id: 'alice', hash: '1b3f' } },
      created_at: '2024-07-20T08:12:43.253Z',
      updated_at: '2024-07-21T09:00:00.000Z',
    });
    expect(b).toMatchObject({
      tenant_id: 'default',
      created_at: NOW,
      metadata: { mem0: { agent_id: 'helper' } },
    });
    // The same list, as the platform returns it: the same memories, the same ids.
    expect(parseMem0(JSON.stringify(results), TARGET).map((m) => m.id)).toEqual([a?.id, b?.id]);
    const one = parseMem0(JSON.stringify(results), { ...TARGET, tenant: 'team' });
    expect(one.map((m) => m.tenant_id)).toEqual(['team', 'team']);
    expect(one[0]?.tags).toContain('user:alice');
  });

  it('names the record and field of a bad memory', () => {
    expect(() =>
      parseMem0(JSON.stringify({ results: [results[0], { id: 'x', memory: '' }] }), TARGET),
    ).toThrow('results[1].memory: must not be empty');
    expect(() => parseMem0(JSON.stringify([{ id: 'x', memory: 'm', user_id: 'a@b.c' }]), TARGET)).toThrow(
      /^\[0\]\.user_id: becomes the tenant, and must be 1 to 64 characters/,
    );
    expect(() => parseMem0('{"memories": []}', TARGET)).toThrow(/file: must be a JSON list of mem0 memories/);
  });
});

describe('imported ids and keys', () => {
  it('derives the same id from the same parts, sorted by creation time when there is one', () => {
    const a = derivedMemoryId(['x', 'y'], Date.parse('2024-01-01T00:00:00Z'));
    expect(a).toMatch(/^mem_[0-9a-z]{26}$/);
    expect(derivedMemoryId(['x', 'y'], Date.parse('2024-01-01T00:00:00Z'))).toBe(a);
    expect(derivedMemoryId(['x', 'y'], Date.parse('2025-01-01T00:00:00Z')) > a).toBe(true);
    expect(derivedMemoryId(['x', 'z'], null)).toMatch(/^mem_[0-9a-z]{26}$/);
  });

  it('imports a key revoked and with a hash no key has', () => {
    const key: StoredApiKey = {
      id: 'k_0123456789abcdef',
      tenantId: 't',
      name: null,
      scopes: ['read'],
      createdAt: NOW,
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: null,
    };
    expect(disabledKeyRecord(key, '2026-07-01T00:00:00.000Z')).toMatchObject({
      revokedAt: '2026-07-01T00:00:00.000Z',
      hash: 'imported-without-secret:k_0123456789abcdef',
    });
    expect(disabledKeyRecord({ ...key, revokedAt: NOW }, 'later').revokedAt).toBe(NOW);
  });
});
