import { type Logger, silentLogger } from '../../core/logger.js';
import type { ApiKeyRecord, ApiKeyStore } from '../../modules/auth/api-key-store.js';
import {
  API_KEY_COLUMNS,
  type ApiKeyRow,
  apiKeyConflict,
  apiKeyFromRow,
  apiKeyValues,
} from '../auth-rows.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { sqliteCodeOf } from './sqlite-errors.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

/** The API keys of every tenant on SQLite: the `api_keys` table, scopes as JSON array text. */
export class SqliteApiKeyStore implements ApiKeyStore {
  readonly #sql: StatementCache;

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#sql = new StatementCache(db);
    guardStoreMethods<SqliteApiKeyStore>(
      this,
      { reads: ['findByHash', 'list', 'activeCount'], writes: ['insert', 'revoke', 'touch'] },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async insert(record: ApiKeyRecord): Promise<void> {
    try {
      this.#sql
        .get(`INSERT INTO api_keys (${API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(...apiKeyValues(record));
    } catch (error) {
      const code = sqliteCodeOf(error);
      // The table is WITHOUT ROWID: a repeated id is a PRIMARYKEY violation, a repeated hash UNIQUE.
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw apiKeyConflict('id', record.id, error);
      if (code === 'SQLITE_CONSTRAINT_UNIQUE') throw apiKeyConflict('hash', record.id, error);
      throw error;
    }
  }

  async findByHash(hash: string): Promise<ApiKeyRecord | null> {
    const row = this.#sql.get(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE hash = ?`).get(hash) as
      | ApiKeyRow
      | undefined;
    return row ? apiKeyFromRow(row) : null;
  }

  async list(filter: { tenantId?: string; includeRevoked?: boolean }): Promise<ApiKeyRecord[]> {
    const clauses: string[] = [];
    const values: string[] = [];
    if (filter.tenantId !== undefined) {
      clauses.push('tenant_id = ?');
      values.push(filter.tenantId);
    }
    if (!filter.includeRevoked) clauses.push('revoked_at IS NULL');
    const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = this.#sql
      .get(`SELECT ${API_KEY_COLUMNS} FROM api_keys ${where} ORDER BY created_at, id`)
      .all(...values) as ApiKeyRow[];
    return rows.map(apiKeyFromRow);
  }

  async revoke(id: string, at: string): Promise<ApiKeyRecord | null> {
    const row = this.#sql
      .get(
        `UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING ${API_KEY_COLUMNS}`,
      )
      .get(at, id) as ApiKeyRow | undefined;
    return row ? apiKeyFromRow(row) : null;
  }

  async activeCount(now: string): Promise<number> {
    const row = this.#sql
      .get(
        'SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)',
      )
      .get(now) as { n: number };
    return row.n;
  }

  async touch(ids: string[], at: string): Promise<void> {
    if (ids.length === 0) return;
    // The later time wins: replicas flush their batches in any order.
    this.#sql
      .get(
        `UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?), ?)
         WHERE id IN (SELECT value FROM json_each(?))`,
      )
      .run(at, at, JSON.stringify(ids));
  }
}
