import fs from 'node:fs';
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import pg from 'pg';
import { BrainError, isBrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { StatementObserver } from '../../modules/observability/slow-query-log.js';
import { redactUrl } from '../redact-url.js';
import type { StorageSettings } from '../storage.js';

/** A pooled client, or the pool itself: anything that runs a query. */
export type Queryable = pg.Pool | pg.PoolClient;

export { redactUrl } from '../redact-url.js';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);
/** SQLSTATEs worth another try: serialization failure, deadlock, shutdown, too many connections, cannot connect now. */
const RETRY_STATES = new Set(['40001', '40P01', '57P01', '57P02', '57P03', '53300']);

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/** The database could not be reached (refused, reset, timed out, shut down). */
export function isConnectionError(error: unknown): boolean {
  const code = codeOf(error);
  if (code && (CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P03'))
    return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    message,
  );
}

/** Transient: the same call may succeed when tried again. */
export function isTransient(error: unknown): boolean {
  return isConnectionError(error) || RETRY_STATES.has(codeOf(error) ?? '');
}

/** A PostgreSQL failure as a BrainError a caller can act on; never the URL's password, never a stack. */
export function toStorageError(error: unknown, where: string): unknown {
  if (isBrainError(error)) return error;
  const code = codeOf(error);
  const text = error instanceof Error ? error.message : String(error);
  if (isConnectionError(error))
    return new BrainError(
      'UNAVAILABLE',
      `PostgreSQL at ${where} is unreachable (${text}); Brain retries by itself, check that the server is up`,
    );
  if (code === '57014') return new BrainError('STORAGE_ERROR', `PostgreSQL cancelled a statement: ${text}`);
  if (code === '53100') return new BrainError('STORAGE_FULL', `PostgreSQL is out of disk space: ${text}`);
  if (code === '40001' || code === '40P01' || code === '55P03')
    return new BrainError('STORAGE_BUSY', `PostgreSQL could not serialise the write, retry: ${text}`);
  return error;
}

/** Bounded retry of transient failures: 3 attempts, 50 ms doubling, ~350 ms at most between them. */
const transientRetry = retry(handleWhen(isTransient), {
  maxAttempts: 2,
  backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 300 }),
});

function sslOption(settings: StorageSettings): pg.PoolConfig['ssl'] {
  switch (settings.databaseSsl) {
    case 'disable':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-full':
      return {
        rejectUnauthorized: true,
        ...(settings.databaseSslCaFile ? { ca: fs.readFileSync(settings.databaseSslCaFile, 'utf8') } : {}),
      };
    default:
      return undefined;
  }
}

/** The pools of one Storage: writes (and reads inside writes) on the primary, reads on the read URL. */
export class PgDatabase {
  readonly primary: pg.Pool;
  readonly reader: pg.Pool;
  readonly where: string;
  readonly #logger: Logger;
  #warned = false;
  /** Told of every statement's time (the slow-query log); none: statements are not timed. */
  #observer: StatementObserver | null = null;
  #vectorOid: Promise<number> | null = null;
  /** BRAIN_DATABASE_PREPARED_STATEMENTS: whether {@link prepared} names its statements. */
  readonly #prepared: boolean;

  constructor(settings: StorageSettings, logger: Logger) {
    const url = settings.databaseUrl as string;
    this.where = redactUrl(url);
    this.#logger = logger;
    this.#prepared = settings.databasePreparedStatements ?? true;
    const base = (connectionString: string): pg.PoolConfig => ({
      connectionString,
      max: settings.databasePoolSize,
      connectionTimeoutMillis: settings.databaseConnectTimeoutMs,
      idleTimeoutMillis: 30_000,
      ...(settings.databaseStatementTimeoutMs > 0
        ? { statement_timeout: settings.databaseStatementTimeoutMs }
        : {}),
      ...(sslOption(settings) !== undefined ? { ssl: sslOption(settings) } : {}),
      application_name: 'brain',
      // Filtered ANN queries keep walking the graph until enough rows pass (pgvector 0.8), and look at
      // 100 candidates (recall asks for at most 100 per stage). No parallel workers: starting one costs
      // milliseconds, more than any of these short queries, and the planner asked for them on stale
      // estimates (the fresh vectors' scan, nearly always empty). Startup options, so no query is queued.
      options:
        '-c hnsw.iterative_scan=relaxed_order -c hnsw.ef_search=100 -c max_parallel_workers_per_gather=0',
    });
    this.primary = this.#pool(base(url));
    this.reader = settings.databaseReadUrl ? this.#pool(base(settings.databaseReadUrl)) : this.primary;
  }

  #pool(config: pg.PoolConfig): pg.Pool {
    const pool = new pg.Pool(config);
    // An idle client whose server went away emits here; unhandled, it would end the process.
    pool.on('error', (error) => this.#unreachable(error));
    pool.on('connect', (client) => {
      client.on('error', (error) => this.#unreachable(error));
    });
    return pool;
  }

  #unreachable(error: Error): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#logger.warn(
      { db: this.where, err: error.message },
      'PostgreSQL connection lost; reconnecting on demand',
    );
  }

  /** Runs `work` with bounded retries of transient failures, mapping the last failure to a BrainError. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      const result = await transientRetry.execute(work);
      this.#warned = false;
      return result;
    } catch (error) {
      throw toStorageError(error, this.where);
    }
  }

  /**
   * Times every statement from now on (`query`, and each statement of a `transaction`) and reports it
   * to `observer`. A pooled query's time includes waiting for a free connection: what its caller waited.
   */
  observe(observer: StatementObserver): void {
    this.#observer = observer;
  }

  /** One query on a pool (the reader by default), retried when transient; each attempt timed. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
    pool: pg.Pool = this.reader,
  ): Promise<pg.QueryResult<R>> {
    return this.run(() => this.#timed(text, () => pool.query<R>(text, values)));
  }

  /**
   * {@link query} as a named prepared statement: each connection parses `text` once, and PostgreSQL
   * may keep its plan (a single write's INSERT cost 1.25 ms of the server's CPU in parse and plan
   * alone). For the hottest statements only (one name per text); a plain query when
   * BRAIN_DATABASE_PREPARED_STATEMENTS is off.
   */
  prepared<R extends pg.QueryResultRow = pg.QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
    pool: pg.Pool = this.reader,
  ): Promise<pg.QueryResult<R>> {
    if (!this.#prepared) return this.query<R>(text, values, pool);
    return this.run(() => this.#timed(text, () => pool.query<R>({ name, text, values })));
  }

  /**
   * `query` with each row as an array of its columns, in the SELECT's order: for reads of many rows
   * (pg builds an object per row by adding each column to it, ~40% of reading 100,000 rows of 11).
   */
  queryArrays<R extends unknown[] = unknown[]>(
    text: string,
    values: unknown[] = [],
    pool: pg.Pool = this.reader,
  ): Promise<R[]> {
    return this.run(() =>
      this.#timed(text, async () => (await pool.query<R>({ text, values, rowMode: 'array' })).rows),
    );
  }

  /** `query` without the timing: the slow-query log's own statements, which must not record themselves. */
  untimedQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
    pool: pg.Pool = this.primary,
  ): Promise<pg.QueryResult<R>> {
    return this.run(() => pool.query<R>(text, values));
  }

  #timed<T>(text: string, work: () => Promise<T>): Promise<T> {
    const observer = this.#observer;
    if (!observer) return work();
    const start = performance.now();
    return work().finally(() => observer.observe(text, performance.now() - start));
  }

  /**
   * The client a transaction's work gets: its `query` timed like {@link PgDatabase.query}, everything
   * else the pooled client's own. Only the (text, values) form is used by the stores.
   */
  #timedClient(client: pg.PoolClient): pg.PoolClient {
    if (!this.#observer) return client;
    const query = (text: string | pg.QueryConfig, values?: unknown[]) =>
      this.#timed(typeof text === 'string' ? text : text.text, () => client.query(text, values));
    return new Proxy(client, {
      get: (target, key) => {
        if (key === 'query') return query;
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  /** A transaction on the primary, retried whole when a transient failure aborts it. */
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.run(async () => {
      const client = await this.primary.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const timed = this.#timedClient(client);
        const result = await work(timed);
        // Timed too: a commit waits for its WAL flush (and its replicas, with synchronous commit).
        await timed.query('COMMIT');
        return result;
      } catch (error) {
        broken = isConnectionError(error);
        if (!broken) await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release(broken);
      }
    });
  }

  /** The oid of pgvector's `vector` type in this database (binary vector arrays name it), cached. */
  vectorOid(): Promise<number> {
    this.#vectorOid ??= this.query<{ oid: number }>("SELECT 'vector'::regtype::oid AS oid", [], this.primary)
      .then(({ rows }) => Number(rows[0]?.oid))
      .catch((error) => {
        this.#vectorOid = null;
        throw error;
      });
    return this.#vectorOid;
  }

  async close(): Promise<void> {
    await this.primary.end().catch(() => undefined);
    if (this.reader !== this.primary) await this.reader.end().catch(() => undefined);
  }
}
