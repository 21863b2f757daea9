import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { hashApiKey } from '../src/modules/auth/api-keys.js';
import { createStorage } from '../src/storage/create-storage.js';
import type { StorageEngine } from '../src/storage/storage.js';
import { ENGINES, postgresBaseUrl, postgresSkipReason } from './services/engines.js';
import {
  expectSameData,
  exportFile,
  exportText,
  fill,
  importFile,
  openBrain,
  recordsOf,
  storeConfig,
  TransferHomes,
} from './transfer-fixture.js';

const homes = new TransferHomes();
afterEach(() => homes.cleanup());

const pg = postgresBaseUrl() !== null;
const skipNote = pg ? '' : ` (skipped: ${postgresSkipReason()})`;

describe.skipIf(!pg)(`brain export and import between engines${skipNote}`, () => {
  for (const [from, to] of [
    ['sqlite', 'postgres'],
    ['postgres', 'sqlite'],
  ] as [StorageEngine, StorageEngine][]) {
    it(`round-trips a ${from} store through a file into ${to}, and a second import changes nothing`, async () => {
      const source = storeConfig(homes, from);
      const { key } = await fill(source);
      const exported = await exportFile(source, homes);
      expect(exported.report.counts).toEqual({
        memory: 8,
        memory_version: 2,
        session: 1,
        api_key: 2,
        audit_event: expect.any(Number),
      });
      const target = storeConfig(homes, to);
      const first = await importFile(target, exported.file);
      expect(first.format).toBe('brain');
      expect(first.counts.memory).toEqual({ read: 8, imported: 8, already: 0, duplicates: 0 });
      expect(first.counts.session).toEqual({ read: 1, imported: 1, already: 0, duplicates: 0 });
      expect(first.counts.memory_version).toEqual({ read: 2, imported: 2, already: 0, duplicates: 0 });
      expect(first.counts.api_key).toMatchObject({ read: 2, imported: 2 });
      const before = await recordsOf(exported.text);
      const after = await recordsOf((await exportText(target)).text);
      expectSameData(before, after);
      expect(after.events.filter((e) => e.action === 'admin.import')).toHaveLength(1);

      const second = await importFile(target, exported.file);
      for (const kind of ['memory', 'memory_version', 'session', 'api_key', 'audit_event'] as const)
        expect(second.counts[kind]).toMatchObject({ imported: 0, already: first.counts[kind].read });
      // Nothing changed, not even the audit log (an import that writes nothing records nothing).
      expect(await recordsOf((await exportText(target)).text)).toEqual(after);

      // The imported store works: recall by vector, the forget kept, the key known but unusable.
      const brain = await openBrain(target);
      try {
        const recall = await brain.services.memory.recall(brain.scope, { query: 'staging database port' });
        expect(recall.hits[0]?.content).toBe('The staging database listens on port 5433');
        expect(recall.hits[0]?.signals.vector_similarity).not.toBeNull();
        // Its history came along: the two states its updates replaced, then the current one.
        const history = await brain.services.memory.history(brain.scope, { id: recall.hits[0]?.id });
        expect(history.versions.map((v) => [v.importance, v.tags, v.change])).toEqual([
          [0.5, ['infra', 'db'], 'updated'],
          [0.8, ['infra', 'db'], 'updated'],
          [0.8, ['infra', 'db', 'ports'], null],
        ]);
        expect((await brain.services.memory.list(brain.scope, {})).total).toBe(5);
        const keys = brain.storage.stores().apiKeys;
        expect(await keys.findByHash(hashApiKey(key))).toBeNull();
        expect(await keys.activeCount(new Date().toISOString())).toBe(0);
        expect((await keys.list({ includeRevoked: true })).map((k) => k.name)).toContain('ci');
      } finally {
        await brain.close();
      }
    });
  }
});

for (const engine of ENGINES) {
  describe.skipIf(engine === 'postgres' && !pg)(
    `brain export and import on ${engine}${engine === 'postgres' ? skipNote : ''}`,
    () => {
      it('exports one tenant, or one project (its memories and sessions only)', async () => {
        const config = storeConfig(homes, engine);
        await fill(config);
        const t2 = await recordsOf((await exportText(config, { tenant: 't2' })).text);
        expect(t2.memories.map((m) => m.content)).toEqual(['Tenant two keeps its own notes']);
        expect(t2.keys.map((k) => k.tenantId)).toEqual(['t2']);
        expect(t2.sessions).toEqual([]);
        expect(t2.events.every((e) => e.tenantId === 't2')).toBe(true);
        const project = await recordsOf((await exportText(config, { project: 'brain' })).text);
        expect(project.memories.map((m) => m.project)).toEqual(['brain', 'brain']);
        expect(project.sessions.map((s) => s.id)).toEqual(['ses-1']);
        expect(project.keys).toEqual([]);
        expect(project.events).toEqual([]);
        await expect(exportText(config, { tenant: 'no spaces' })).rejects.toMatchObject({
          code: 'INVALID_INPUT',
          message: expect.stringMatching(/^tenant: must be 1 to 64 characters/),
        });
      });

      it('leaves a row whose key or content a live memory of the target holds, and counts it', async () => {
        const source = storeConfig(homes, engine);
        await fill(source);
        const exported = await exportFile(source, homes);
        const target = storeConfig(homes, engine);
        const brain = await openBrain(target);
        try {
          await brain.services.memory.remember(brain.scope, {
            content: 'The staging database listens on port 5433',
          });
          await brain.services.memory.remember(brain.scope, { content: 'Bob prefers coffee', key: 'drink' });
        } finally {
          await brain.close();
        }
        const report = await importFile(target, exported.file);
        expect(report.counts.memory).toEqual({ read: 8, imported: 6, already: 0, duplicates: 2 });
        const after = await recordsOf((await exportText(target)).text);
        expect(after.memories.filter((m) => m.key === 'drink').map((m) => m.content)).toEqual([
          'Bob prefers coffee',
        ]);
      });

      it('refuses a malformed line naming its line and field, and writes nothing at all', async () => {
        const source = storeConfig(homes, engine);
        await fill(source);
        const { text } = await exportText(source);
        const lines = text.trimEnd().split('\n');
        // The first batch's rows are fine; a bad one near the end must still stop everything.
        const bad = JSON.parse(lines[6] as string) as Record<string, unknown>;
        lines[6] = JSON.stringify({ ...bad, tags: ['x'.repeat(65)] });
        const file = path.join(homes.dir(), 'bad.jsonl');
        fs.writeFileSync(file, `${lines.join('\n')}\n`);
        const target = storeConfig(homes, engine);
        await expect(importFile(target, file)).rejects.toMatchObject({
          code: 'INVALID_INPUT',
          message: 'line 7: tags.0: must be at most 64 characters',
          details: { line: 7 },
        });
        const storage = await createStorage(target, { logger: silentLogger });
        try {
          await storage.migrate();
          expect(await storage.copy().counts()).toEqual({
            memories: 0,
            sessions: 0,
            apiKeys: 0,
            auditEvents: 0,
          });
        } finally {
          await storage.close();
        }
      });

      it('skips kinds of a newer Brain with a count, and refuses a newer format version', async () => {
        const source = storeConfig(homes, engine);
        await fill(source);
        const lines = (await exportText(source)).text.trimEnd().split('\n');
        const end = JSON.parse(lines.pop() as string) as { kind: string; counts: Record<string, number> };
        lines.push(JSON.stringify({ kind: 'note', id: 'note-1', title: 'from a later issue' }));
        lines.push(JSON.stringify({ ...end, counts: { ...end.counts, note: 1 } }));
        const file = path.join(homes.dir(), 'newer-kinds.jsonl');
        fs.writeFileSync(file, `${lines.join('\n')}\n`);
        const target = storeConfig(homes, engine);
        const report = await importFile(target, file);
        expect(report.skipped).toEqual({ note: 1 });
        expect(report.counts.memory.imported).toBe(8);

        const header = JSON.parse(lines[0] as string) as Record<string, unknown>;
        lines[0] = JSON.stringify({ ...header, version: 2 });
        const newer = path.join(homes.dir(), 'newer-version.jsonl');
        fs.writeFileSync(newer, `${lines.join('\n')}\n`);
        const other = storeConfig(homes, engine);
        await expect(importFile(other, newer)).rejects.toMatchObject({
          message: expect.stringMatching(
            /^line 1: version: this file is Brain export format version 2.*upgrade Brain/,
          ),
        });
        await expect(importFile(other, exportedPathless())).rejects.toMatchObject({
          message: expect.stringMatching(/^file: no such file/),
        });
        await expect(importFile(target, file, { tenant: 'x' })).rejects.toMatchObject({
          message: expect.stringMatching(/^tenant: applies to --format mcp-memory and mem0 only/),
        });
      });
    },
  );
}

function exportedPathless(): string {
  return path.join(homes.dir(), 'missing.jsonl');
}
