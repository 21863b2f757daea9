import fs from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/services/engines.js';
import { engineSkipReason, openStorage, type StorageHarness } from '../../test/services/storage-harness.js';
import { loadConfig, requireValidConfig } from '../config/load-config.js';
import { isBrainError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { newMemoryRow } from '../storage/contract/memory-store-contract.js';
import { checkAtStart, checkpoint, vacuumAndAnalyze } from './run-db.js';

const harnesses: StorageHarness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

for (const engine of ENGINES) {
  const skip = engineSkipReason(engine);
  describe.skipIf(skip !== null)(
    `the scheduler's upkeep jobs on ${engine}${skip ? ` (skipped: ${skip})` : ''}`,
    () => {
      it('vacuumAndAnalyze and checkpoint run on the store and say what they did', async () => {
        const h = await openStorage(engine);
        harnesses.push(h);
        await h.storage
          .stores()
          .memories.insert({ tenantId: 't' }, [newMemoryRow('a memory to vacuum around')]);
        const result = await vacuumAndAnalyze(h.storage);
        expect(result.vacuum.ran).toBe(true);
        if (engine === 'sqlite') expect(result.analyze?.ran).toBe(true);
        else expect(result.analyze).toBeNull();
        expect((await checkpoint(h.storage)).ran).toBe(true);
      });
    },
  );
}

describe('the start-up check (SQLite)', () => {
  it('passes an intact file and stops a damaged one with one line naming it and brain db recover', async () => {
    const h = await openStorage('sqlite');
    harnesses.push(h);
    const rows = Array.from({ length: 200 }, (_, i) => newMemoryRow(`memory ${i} ${'padding '.repeat(30)}`));
    await h.storage.stores().memories.insert({ tenantId: 't' }, rows);
    const config = requireValidConfig(
      loadConfig({ env: { LOG_LEVEL: 'silent', ...h.env }, cwd: h.env.BRAIN_HOME }),
    );
    await expect(checkAtStart(config, silentLogger)).resolves.toBeUndefined();
    await h.storage.close();
    const db = new Database(config.dbPath, { readonly: true });
    const page = db
      .prepare("SELECT pageno FROM dbstat WHERE name = 'memories' AND pagetype = 'leaf' LIMIT 1")
      .pluck()
      .get() as number;
    db.close();
    const fd = fs.openSync(config.dbPath, 'r+');
    fs.writeSync(fd, Buffer.alloc(8192, 0x5a), 0, 8192, (page - 1) * 8192);
    fs.closeSync(fd);
    const error = await checkAtStart(config, silentLogger).catch((e: unknown) => e);
    expect(isBrainError(error) && error.code).toBe('STORAGE_CORRUPT');
    expect((error as Error).message).toMatch(
      new RegExp(
        `^database file ${config.dbPath.replaceAll('.', '\\.')} is damaged \\(quick_check: .*\\): stop Brain, then run \`brain db recover\``,
      ),
    );
  });
});
