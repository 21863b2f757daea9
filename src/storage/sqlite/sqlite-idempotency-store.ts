import { type Logger, silentLogger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import {
  type ClaimResult,
  doneClaim,
  type IdempotencyClaim,
  type IdempotencyStore,
  type StoredResponse,
} from '../../modules/idempotency/idempotency-store.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

interface Row {
  fingerprint: string;
  state: 'running' | 'done';
  status: number | null;
  body: string | null;
  content_type: string | null;
  lease_until: string;
  expires_at: string;
}

/**
 * Idempotency keys on SQLite: a claim is one IMMEDIATE transaction (read, then insert or take over), so
 * of the processes and requests sharing the file exactly one claims a key.
 */
export class SqliteIdempotencyStore implements IdempotencyStore {
  readonly #db: SqliteDatabase;
  readonly #sql: StatementCache;

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#db = db;
    this.#sql = new StatementCache(db);
    guardStoreMethods<SqliteIdempotencyStore>(
      this,
      { reads: [], writes: ['claim', 'complete', 'release', 'purgeExpired'] },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async claim(scope: RequestScope, c: IdempotencyClaim): Promise<ClaimResult> {
    const run = this.#db.transaction((): ClaimResult => {
      const row = this.#sql
        .get(
          `SELECT fingerprint, state, status, body, content_type, lease_until, expires_at
           FROM idempotency_keys WHERE tenant_id = ? AND key = ?`,
        )
        .get(scope.tenantId, c.key) as Row | undefined;
      const take = () => {
        this.#sql
          .get(
            `INSERT INTO idempotency_keys (tenant_id, key, fingerprint, state, lease_until, expires_at, created_at)
             VALUES (?, ?, ?, 'running', ?, ?, ?)
             ON CONFLICT (tenant_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'running',
               status = NULL, body = NULL, content_type = NULL, lease_until = excluded.lease_until,
               expires_at = excluded.expires_at, created_at = excluded.created_at`,
          )
          .run(scope.tenantId, c.key, c.fingerprint, c.leaseUntil, c.expiresAt, c.now);
        return { state: 'claimed' } as const;
      };
      if (!row || row.expires_at <= c.now) return take();
      if (row.fingerprint !== c.fingerprint) return { state: 'mismatch' };
      if (row.state === 'done') return doneClaim(row);
      return row.lease_until <= c.now ? take() : { state: 'running' };
    });
    return run.immediate();
  }

  async complete(
    scope: RequestScope,
    key: string,
    fingerprint: string,
    response: StoredResponse,
    expiresAt: string,
  ): Promise<void> {
    this.#sql
      .get(
        `UPDATE idempotency_keys SET state = 'done', status = ?, body = ?, content_type = ?, expires_at = ?
         WHERE tenant_id = ? AND key = ? AND fingerprint = ? AND state = 'running'`,
      )
      .run(response.status, response.body, response.contentType, expiresAt, scope.tenantId, key, fingerprint);
  }

  async release(scope: RequestScope, key: string, fingerprint: string): Promise<void> {
    this.#sql
      .get(
        `DELETE FROM idempotency_keys WHERE tenant_id = ? AND key = ? AND fingerprint = ? AND state = 'running'`,
      )
      .run(scope.tenantId, key, fingerprint);
  }

  async purgeExpired(now: string): Promise<number> {
    return this.#sql.get('DELETE FROM idempotency_keys WHERE expires_at <= ?').run(now).changes;
  }
}
