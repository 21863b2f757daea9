import { type Logger, silentLogger } from '../../core/logger.js';
import type { ConfigStore } from '../../modules/maintenance/config-store.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

/** The server-wide `config` table on SQLite. */
export class SqliteConfigStore implements ConfigStore {
  readonly #sql: StatementCache;

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#sql = new StatementCache(db);
    guardStoreMethods<SqliteConfigStore>(
      this,
      { reads: ['get'], writes: ['set'] },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async get(key: string): Promise<{ value: string; updated_at: string } | null> {
    const row = this.#sql.get('SELECT value, updated_at FROM config WHERE key = ?').get(key) as
      | { value: string; updated_at: string }
      | undefined;
    return row ?? null;
  }

  async set(key: string, value: string | null, now: string): Promise<void> {
    if (value === null) {
      this.#sql.get('DELETE FROM config WHERE key = ?').run(key);
      return;
    }
    this.#sql
      .get(
        `INSERT INTO config (key, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      )
      .run(key, value, now);
  }
}
