import type { ApiKeyRecord, ApiKeyStore } from '../../modules/auth/api-key-store.js';
import {
  API_KEY_COLUMNS,
  type ApiKeyRow,
  apiKeyConflict,
  apiKeyFromRow,
  apiKeyValues,
} from '../auth-rows.js';
import type { PgDatabase } from './pg-database.js';

/** SQLSTATE unique_violation. */
const UNIQUE_VIOLATION = '23505';

/**
 * The API keys of every tenant on PostgreSQL, shared by every replica. Every query goes to the primary:
 * a key revoked a moment ago must not still authenticate because a read replica lags.
 */
export class PgApiKeyStore implements ApiKeyStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async insert(record: ApiKeyRecord): Promise<void> {
    try {
      await this.#db.query(
        `INSERT INTO api_keys (${API_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        apiKeyValues(record),
        this.#db.primary,
      );
    } catch (error) {
      const e = error as { code?: string; constraint?: string };
      if (e.code === UNIQUE_VIOLATION)
        throw apiKeyConflict(e.constraint === 'api_keys_pkey' ? 'id' : 'hash', record.id, error);
      throw error;
    }
  }

  async findByHash(hash: string): Promise<ApiKeyRecord | null> {
    const { rows } = await this.#db.query<ApiKeyRow>(
      `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE hash = $1`,
      [hash],
      this.#db.primary,
    );
    return rows[0] ? apiKeyFromRow(rows[0]) : null;
  }

  async list(filter: { tenantId?: string; includeRevoked?: boolean }): Promise<ApiKeyRecord[]> {
    const clauses: string[] = [];
    const values: string[] = [];
    if (filter.tenantId !== undefined) {
      values.push(filter.tenantId);
      clauses.push(`tenant_id = $${values.length}`);
    }
    if (!filter.includeRevoked) clauses.push('revoked_at IS NULL');
    const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
    const { rows } = await this.#db.query<ApiKeyRow>(
      `SELECT ${API_KEY_COLUMNS} FROM api_keys ${where} ORDER BY created_at, id`,
      values,
      this.#db.primary,
    );
    return rows.map(apiKeyFromRow);
  }

  async revoke(id: string, at: string): Promise<ApiKeyRecord | null> {
    const { rows } = await this.#db.query<ApiKeyRow>(
      `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 RETURNING ${API_KEY_COLUMNS}`,
      [at, id],
      this.#db.primary,
    );
    return rows[0] ? apiKeyFromRow(rows[0]) : null;
  }

  async activeCount(now: string): Promise<number> {
    const { rows } = await this.#db.query<{ n: string }>(
      'SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)',
      [now],
      this.#db.primary,
    );
    return Number(rows[0]?.n ?? 0);
  }

  async touch(ids: string[], at: string): Promise<void> {
    if (ids.length === 0) return;
    // The later time wins (greatest() skips a NULL): replicas flush their batches in any order.
    await this.#db.query(
      'UPDATE api_keys SET last_used_at = greatest(last_used_at, $1) WHERE id = ANY($2::text[])',
      [at, ids],
      this.#db.primary,
    );
  }
}
