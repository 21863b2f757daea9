import type { ConfigStore } from '../../modules/maintenance/config-store.js';
import type { PgDatabase } from './pg-database.js';

/** The server-wide `config` table on PostgreSQL, read by every replica. */
export class PgConfigStore implements ConfigStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async get(key: string): Promise<{ value: string; updated_at: string } | null> {
    // The primary: a replica that was just told maintenance began must not read a lagging copy.
    const { rows } = await this.#db.query<{ value: string; updated_at: string }>(
      'SELECT value, updated_at FROM config WHERE key = $1',
      [key],
      this.#db.primary,
    );
    return rows[0] ?? null;
  }

  async set(key: string, value: string | null, now: string): Promise<void> {
    if (value === null) {
      await this.#db.query('DELETE FROM config WHERE key = $1', [key], this.#db.primary);
      return;
    }
    await this.#db.query(
      `INSERT INTO config (key, value, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [key, value, now],
      this.#db.primary,
    );
  }
}
