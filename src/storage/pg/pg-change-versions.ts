import type { Logger } from '../../core/logger.js';
import type { PgDatabase } from './pg-database.js';

/**
 * A new token for each tenant of $1, in one statement. Tenants in a fixed order, so that two replicas'
 * statements lock the rows they share in the same order and never deadlock. Committed without waiting
 * for the WAL flush (synchronous_commit off for this transaction alone): the writes it follows were
 * flushed by their own commits, and a token lost in a crash of PostgreSQL costs at most an answer cached
 * for the TTL, not a write; waiting would hold the row's lock through an fsync, one writer at a time.
 */
const BUMP = `INSERT INTO memory_change_versions (tenant_id, token)
  SELECT t, gen_random_uuid()::text
  FROM unnest($1::text[]) AS t, (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
  ORDER BY t
  ON CONFLICT (tenant_id) DO UPDATE SET token = excluded.token`;

/**
 * A new token for the tenant `tenantSql` (an SQL expression) when `when` holds, as a clause of the
 * caller's own statement (a CTE), committed with it: a write that replaces its tenant's token itself.
 */
export function renewTokenWhen(tenantSql: string, when: string): string {
  return `INSERT INTO memory_change_versions (tenant_id, token)
    SELECT ${tenantSql}, gen_random_uuid()::text WHERE ${when}
    ON CONFLICT (tenant_id) DO UPDATE SET token = excluded.token`;
}

/**
 * A new token for every tenant holding memories in `schema` (a qualified name, or none: the search
 * path's): after a change of the whole store (a restore, a reindex), in that change's transaction.
 */
export function renewEveryToken(schema = ''): string {
  const q = schema ? `${schema}.` : '';
  return `INSERT INTO ${q}memory_change_versions (tenant_id, token)
  SELECT t, gen_random_uuid()::text FROM (SELECT DISTINCT tenant_id AS t FROM ${q}memories) d
  ON CONFLICT (tenant_id) DO UPDATE SET token = excluded.token`;
}

/**
 * Each tenant's change token in the database (memory_change_versions): replaced after every committed
 * change of the tenant's memories, from any replica, before the change is acknowledged. Recall's cache
 * reads it before it answers, so that an answer made before a write through another replica is never
 * served after that write was acknowledged; the change bus's notices arrive later than that.
 *
 * Why a random token and not a counter: a restore brings back the rows of the day of the backup, and a
 * counter could come back to a value an answer was cached at; a token is never the same twice.
 *
 * Replacements are coalesced: the tenants changed while one statement is in flight go in the next one,
 * and each writer waits for the first statement sent after it asked.
 */
export class PgChangeVersions {
  readonly #db: PgDatabase;
  readonly #logger: Logger;
  readonly #pending = new Set<string>();
  /** The statement waiting to go (it holds every tenant asked for since the last one went). */
  #next: Promise<void> | null = null;
  #inFlight: Promise<void> | null = null;

  constructor(db: PgDatabase, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
  }

  /**
   * New tokens for `tenants`, after their changes committed. A failure is logged, not thrown: the change
   * is committed and must not be reported as failed (other replicas may then serve an answer made before
   * it for at most the cache's TTL).
   */
  bump(tenants: string[]): Promise<void> {
    for (const t of tenants) this.#pending.add(t);
    this.#next ??= (this.#inFlight ?? Promise.resolve()).then(() => this.#send());
    return this.#next;
  }

  async #send(): Promise<void> {
    this.#next = null;
    const tenants = [...this.#pending];
    this.#pending.clear();
    const sent = this.#db.query(BUMP, [tenants], this.#db.primary).then(
      () => undefined,
      (error) =>
        this.#logger.warn(
          { err: (error as Error).message, tenants: tenants.length },
          "could not record a change in memory_change_versions; other replicas' recall caches may serve an older answer until their TTL",
        ),
    );
    this.#inFlight = sent;
    await sent;
    if (this.#inFlight === sent) this.#inFlight = null;
  }

  /** The tenant's token as the reader sees it ('-': never changed). Read where recall's candidates are. */
  async read(tenantId: string): Promise<string> {
    const { rows } = await this.#db.query<{ token: string }>(
      'SELECT token FROM memory_change_versions WHERE tenant_id = $1',
      [tenantId],
    );
    return rows[0]?.token ?? '-';
  }
}
