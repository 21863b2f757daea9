import type { RequestScope } from '../../core/scope.js';
import {
  type ClaimResult,
  doneClaim,
  type IdempotencyClaim,
  type IdempotencyStore,
  type StoredResponse,
} from '../../modules/idempotency/idempotency-store.js';
import type { PgDatabase } from './pg-database.js';

/**
 * Idempotency keys on PostgreSQL, shared by every replica. A claim is one statement: insert the key, or
 * take it over when it expired or its running owner's lease ran out; the row lock the upsert takes makes
 * concurrent claims from any replica queue, and exactly one of them sees its own fingerprint come back
 * with `claimed`. The others read the row as it stands.
 */
export class PgIdempotencyStore implements IdempotencyStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async claim(scope: RequestScope, c: IdempotencyClaim): Promise<ClaimResult> {
    const { rows } = await this.#db.query<{ claimed: boolean }>(
      `INSERT INTO idempotency_keys (tenant_id, key, fingerprint, state, lease_until, expires_at, created_at)
       VALUES ($1, $2, $3, 'running', $4, $5, $6)
       ON CONFLICT (tenant_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'running',
         status = NULL, body = NULL, content_type = NULL, lease_until = excluded.lease_until,
         expires_at = excluded.expires_at, created_at = excluded.created_at
       WHERE idempotency_keys.expires_at <= $6
          OR (idempotency_keys.state = 'running' AND idempotency_keys.lease_until <= $6
              AND idempotency_keys.fingerprint = $3)
       RETURNING true AS claimed`,
      [scope.tenantId, c.key, c.fingerprint, c.leaseUntil, c.expiresAt, c.now],
      this.#db.primary,
    );
    if (rows.length > 0) return { state: 'claimed' };
    const found = await this.#db.query<{
      fingerprint: string;
      state: 'running' | 'done';
      status: number | null;
      body: string | null;
      content_type: string | null;
    }>(
      `SELECT fingerprint, state, status, body, content_type FROM idempotency_keys
       WHERE tenant_id = $1 AND key = $2`,
      [scope.tenantId, c.key],
      this.#db.primary,
    );
    const row = found.rows[0];
    // Gone between the two statements (released, purged): a retry of the claim settles it.
    if (!row) return this.claim(scope, c);
    if (row.fingerprint !== c.fingerprint) return { state: 'mismatch' };
    if (row.state === 'done') return doneClaim(row);
    return { state: 'running' };
  }

  async complete(
    scope: RequestScope,
    key: string,
    fingerprint: string,
    response: StoredResponse,
    expiresAt: string,
  ): Promise<void> {
    await this.#db.query(
      `UPDATE idempotency_keys SET state = 'done', status = $4, body = $5, content_type = $6, expires_at = $7
       WHERE tenant_id = $1 AND key = $2 AND fingerprint = $3 AND state = 'running'`,
      [scope.tenantId, key, fingerprint, response.status, response.body, response.contentType, expiresAt],
      this.#db.primary,
    );
  }

  async release(scope: RequestScope, key: string, fingerprint: string): Promise<void> {
    await this.#db.query(
      `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND fingerprint = $3 AND state = 'running'`,
      [scope.tenantId, key, fingerprint],
      this.#db.primary,
    );
  }

  async purgeExpired(now: string): Promise<number> {
    const { rowCount } = await this.#db.query(
      'DELETE FROM idempotency_keys WHERE expires_at <= $1',
      [now],
      this.#db.primary,
    );
    return rowCount ?? 0;
  }
}
