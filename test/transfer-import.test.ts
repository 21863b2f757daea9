import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BrainConfig } from '../src/config/config-schema.js';
import { silentLogger } from '../src/core/logger.js';
import { createStorage } from '../src/storage/create-storage.js';
import { ENGINES, postgresBaseUrl, postgresSkipReason } from './services/engines.js';
import { importFile, openBrain, storeConfig, TransferHomes } from './transfer-fixture.js';

const homes = new TransferHomes();
afterEach(() => homes.cleanup());
const pg = postgresBaseUrl() !== null;

/** A memory.jsonl as the official MCP memory server writes it (saveGraph: entities, then relations). */
const MCP_FILE = [
  {
    type: 'entity',
    name: 'John_Smith',
    entityType: 'person',
    observations: ['Speaks fluent Spanish', 'Graduated in 2019', 'Prefers morning meetings'],
  },
  { type: 'entity', name: 'Anthropic', entityType: 'organization', observations: ['Builds Claude'] },
  { type: 'entity', name: 'Lisbon', entityType: 'city', observations: [] },
  { type: 'relation', from: 'John_Smith', to: 'Anthropic', relationType: 'works_at' },
  { type: 'relation', from: 'John_Smith', to: 'Lisbon', relationType: 'lives_in' },
]
  .map((line) => JSON.stringify(line))
  .join('\n');

/** What mem0's `Memory.get_all()` returns, saved with json.dump (the open-source library's shape). */
const MEM0_FILE = JSON.stringify(
  {
    results: [
      {
        id: '892db2ae-06d9-49e5-8b3e-585ef9b85b8e',
        memory: 'Is a vegetarian and allergic to nuts',
        hash: '8b4f4d2c0e',
        metadata: { source: 'onboarding' },
        created_at: '2024-07-20T01:12:43.253447-07:00',
        updated_at: null,
        user_id: 'alice',
      },
      {
        id: 'd2c7a1f0-3b5e-4c2a-9e41-2f8d9c6b7a10',
        memory: 'Plays tennis on weekends',
        hash: '3a91e77b1c',
        metadata: null,
        categories: ['hobbies', 'sports'],
        created_at: '2024-07-21T18:30:00.000000-07:00',
        updated_at: '2024-08-01T10:00:00.000000-07:00',
        user_id: 'alice',
      },
      {
        id: '5f0e2b9c-8d1a-4e6f-b3c7-a9d8e7f6c5b4',
        memory: 'Prefers concise answers',
        created_at: '2024-07-22T09:00:00Z',
        user_id: 'bob',
      },
    ],
  },
  null,
  2,
);

function file(name: string, text: string): string {
  const p = path.join(homes.dir(), name);
  fs.writeFileSync(p, text);
  return p;
}

async function backlog(config: BrainConfig): Promise<number> {
  const storage = await createStorage(config, { logger: silentLogger });
  try {
    await storage.migrate();
    return await storage.stores().embeddingQueue.backlog();
  } finally {
    await storage.close();
  }
}

for (const engine of ENGINES) {
  const note = engine === 'postgres' && !pg ? ` (skipped: ${postgresSkipReason()})` : '';
  describe.skipIf(engine === 'postgres' && !pg)(
    `brain import of other servers' files on ${engine}${note}`,
    () => {
      it('imports an MCP memory.jsonl: observations, entities and relations as memories, queued, once', async () => {
        const config = storeConfig(homes, engine);
        const mcp = file('memory.jsonl', `${MCP_FILE}\n`);
        const first = await importFile(config, mcp, { project: 'people' });
        expect(first.format).toBe('mcp-memory');
        expect(first.counts.memory).toEqual({ read: 7, imported: 7, already: 0, duplicates: 0 });
        expect(await backlog(config)).toBe(7);
        const again = await importFile(config, mcp, { project: 'people' });
        expect(again.counts.memory).toEqual({ read: 7, imported: 0, already: 7, duplicates: 0 });

        const brain = await openBrain(config);
        try {
          await brain.settle();
          const list = await brain.services.memory.list(brain.scope, { project: 'people', limit: 50 });
          expect(list.items.map((m) => m.content).sort()).toEqual([
            'Anthropic: Builds Claude',
            'John_Smith lives_in Lisbon',
            'John_Smith works_at Anthropic',
            'John_Smith: Graduated in 2019',
            'John_Smith: Prefers morning meetings',
            'John_Smith: Speaks fluent Spanish',
            'Lisbon is a city',
          ]);
          const recall = await brain.services.memory.recall(brain.scope, {
            query: 'which language does John speak',
            project: 'people',
            tags: ['entity:John_Smith'],
          });
          expect(recall.hits[0]?.content).toBe('John_Smith: Speaks fluent Spanish');
          // Embedded by the queue like any remember whose vector comes later.
          expect(recall.hits[0]?.signals.vector_similarity).not.toBeNull();
        } finally {
          await brain.close();
        }
      });

      it('imports a mem0 export: users as tenants, categories as tags, times kept, once', async () => {
        const config = storeConfig(homes, engine);
        const mem0 = file('mem0.json', MEM0_FILE);
        const first = await importFile(config, mem0);
        expect(first.format).toBe('mem0');
        expect(first.counts.memory).toMatchObject({ read: 3, imported: 3 });
        expect((await importFile(config, mem0)).counts.memory).toMatchObject({ imported: 0, already: 3 });
        const brain = await openBrain(config);
        try {
          const alice = await brain.services.memory.list(
            { tenantId: 'alice', principal: 'local' },
            { sort: 'created_at', order: 'asc' },
          );
          expect(alice.items.map((m) => [m.content, m.tags, m.created_at])).toEqual([
            ['Is a vegetarian and allergic to nuts', ['mem0', 'user:alice'], '2024-07-20T08:12:43.253Z'],
            [
              'Plays tennis on weekends',
              ['mem0', 'user:alice', 'hobbies', 'sports'],
              '2024-07-22T01:30:00.000Z',
            ],
          ]);
          expect(alice.items[0]?.metadata).toMatchObject({
            source: 'onboarding',
            mem0: { user_id: 'alice' },
          });
          expect(alice.items[1]?.updated_at).toBe('2024-08-01T17:00:00.000Z');
          const bob = await brain.services.memory.list({ tenantId: 'bob', principal: 'local' }, {});
          expect(bob.items.map((m) => m.content)).toEqual(['Prefers concise answers']);
          expect((await brain.services.memory.list(brain.scope, {})).total).toBe(0);
        } finally {
          await brain.close();
        }
        // With --tenant, every memory goes there; the same file lands in another tenant as new rows.
        const one = await importFile(config, mem0, { tenant: 'team', format: 'mem0' });
        expect(one.counts.memory).toMatchObject({ imported: 3 });
      });

      it('refuses a bad mem0 record or an unknown format, writing nothing', async () => {
        const config = storeConfig(homes, engine);
        const doc = JSON.parse(MEM0_FILE) as { results: Record<string, unknown>[] };
        (doc.results[2] as Record<string, unknown>).created_at = 'yesterday';
        await expect(importFile(config, file('bad.json', JSON.stringify(doc)))).rejects.toMatchObject({
          message: expect.stringMatching(/^results\[2\]\.created_at: must be an ISO 8601 time/),
        });
        await expect(importFile(config, file('notes.csv', 'id,content\n1,hello\n'))).rejects.toMatchObject({
          message: expect.stringMatching(/^format: cannot tell the input's format/),
        });
        expect(await backlog(config)).toBe(0);
      });
    },
  );
}
