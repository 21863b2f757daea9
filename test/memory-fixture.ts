/** A memory service over the real SQLite driver in a temp file, for service-level tests. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import { createFixedClock } from '../src/core/clock.js';
import { BrainError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import type { Embedder } from '../src/modules/embeddings/embedder.js';
import { createHashEmbedder } from '../src/modules/embeddings/hash-embedder.js';
import { createMemoryService } from '../src/modules/memory/memory-service.js';
import { openSqliteDatabase } from '../src/storage/sqlite/sqlite-database.js';
import { SqliteMemoryStore } from '../src/storage/sqlite/sqlite-memory-store.js';
import { migrateSqlite } from '../src/storage/sqlite/sqlite-migrations.js';

export const scope = { tenantId: 'default' };
export const START = '2026-06-01T12:00:00.000Z';

const opened: { close: () => void; dir: string }[] = [];
afterEach(() => {
  for (const { close, dir } of opened.splice(0)) {
    close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A service on a fresh database (closed after each test), its fixed clock, and a live-memory count. */
export function setup(embedder: Embedder | null = createHashEmbedder(256)) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-service-'));
  const db = openSqliteDatabase(path.join(dir, 'brain.db'), { busyTimeoutMs: 2000, cacheSizeMb: 8 });
  migrateSqlite(db);
  const store = new SqliteMemoryStore(db, silentLogger);
  const clock = createFixedClock(START);
  const service = createMemoryService({ store, embedder, clock, logger: silentLogger });
  opened.push({
    dir,
    close: () => {
      store.vectors.close();
      store.flushTouches();
      db.close();
    },
  });
  return { service, clock, count: () => service.list(scope, { limit: 1 }).then((r) => r.total) };
}

/** The INVALID_INPUT error a call must fail with; returns its message. */
export async function invalid(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BrainError);
  expect((error as BrainError).code).toBe('INVALID_INPUT');
  return (error as BrainError).message;
}
