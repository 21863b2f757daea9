import { silentLogger } from '../../src/core/logger.js';
import { PgDatabase } from '../../src/storage/pg/pg-database.js';
import type { StorageSettings } from '../../src/storage/storage.js';

/**
 * For driver tests that run stores straight on a PgDatabase: one store per database, so no other
 * replica listens and no notice goes anywhere.
 */
export const noChangeBus = {
  publish: async () => undefined,
  subscribe: () => () => undefined,
  check: () => ({ ok: true, message: 'single process: no change bus' }),
  close: async () => {},
};

/** Storage settings for a PostgreSQL database at `url`, small pool, the rest as given. */
export function pgTestSettings(url: string, overrides: Partial<StorageSettings> = {}): StorageSettings {
  return {
    dbPath: '',
    busyTimeoutMs: 5000,
    sqliteCacheMb: 16,
    databaseUrl: url,
    databasePoolSize: 4,
    databaseStatementTimeoutMs: 30_000,
    databaseConnectTimeoutMs: 5000,
    databaseSsl: 'disable',
    ...overrides,
  };
}

/** Databases opened by a test file, closed by `closeAll` (call it in afterEach). */
export class PgDatabases {
  readonly #opened: PgDatabase[] = [];

  open(url: string, overrides: Partial<StorageSettings> = {}): PgDatabase {
    const db = new PgDatabase(pgTestSettings(url, overrides), silentLogger);
    this.#opened.push(db);
    return db;
  }

  async closeAll(): Promise<void> {
    for (const db of this.#opened.splice(0)) await db.close();
  }
}
