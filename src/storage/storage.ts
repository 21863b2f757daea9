import type { HealthCheck } from '../core/health.js';
import type { AuditStore } from '../modules/audit/audit-store.js';
import type { ApiKeyRecord, ApiKeyStore } from '../modules/auth/api-key-store.js';
import type { EmbeddingQueueStore } from '../modules/embeddings/embedding-queue.js';
import type { EpisodeStore } from '../modules/episodes/episode-store.js';
import type { ExecutionStore } from '../modules/execution/execution-store.js';
import type { IdempotencyStore } from '../modules/idempotency/idempotency-store.js';
import type { JobStore } from '../modules/jobs/job-store.js';
import type { ConfigStore } from '../modules/maintenance/config-store.js';
import type { MemoryStore } from '../modules/memory/memory-store.js';
import type { TierStore } from '../modules/memory/tier-store.js';
import type { QueryLogStore } from '../modules/observability/query-log-store.js';
import type { SessionStore } from '../modules/sessions/session-store.js';
import type {
  StoredApiKey,
  StoredAuditEvent,
  StoredMemory,
  StoredSession,
  StoredVersion,
  TransferFilter,
  VersionKey,
} from '../modules/transfer/transfer-records.js';
import type { StorageIntegrity } from './storage-integrity.js';

/** The engines Brain stores on: the embedded file (default) or a PostgreSQL server with pgvector. */
export type StorageEngine = 'sqlite' | 'postgres';

/**
 * The settings the drivers read, named as in BrainConfig (which satisfies this type), so that storage
 * does not depend on the config layer. See docs/CONFIG.md for each.
 */
export interface StorageSettings {
  dbPath: string;
  busyTimeoutMs: number;
  /** SQLite's page cache per connection (BRAIN_SQLITE_CACHE_MB). */
  sqliteCacheMb: number;
  databaseUrl?: string | undefined;
  databaseReadUrl?: string | undefined;
  databasePoolSize: number;
  databaseStatementTimeoutMs: number;
  databaseConnectTimeoutMs: number;
  /**
   * Whether the hottest statements are named prepared statements (BRAIN_DATABASE_PREPARED_STATEMENTS;
   * unset: true). Off behind a pooler that cannot keep them (PgBouncer before 1.21 in transaction mode).
   */
  databasePreparedStatements?: boolean | undefined;
  databaseSsl: 'prefer-url' | 'disable' | 'require' | 'verify-full';
  databaseSslCaFile?: string | undefined;
  redisUrl?: string | undefined;
  /** Statements slower than this are recorded in `query_log`; unset or 0: not timed, nothing recorded. */
  slowQueryMs?: number | undefined;
}

/** What `brain migrate` reports: the migrations this call applied, and the version now. */
export interface MigrationReport {
  applied: string[];
  current: number;
}

/** The schema version the store is at, and the newest this build knows. */
export interface SchemaStatus {
  current: number;
  latest: number;
}

/** Every port a driver implements; the composition root hands them to the services. */
export interface StorageStores {
  memories: MemoryStore;
  /** Tiers and decay: the rebalance's reads, its plans applied, and the moves recorded. */
  tiers: TierStore;
  sessions: SessionStore;
  /** The episodic buffer: each session's recent events and what consolidation made of them. */
  episodes: EpisodeStore;
  embeddingQueue: EmbeddingQueueStore;
  idempotency: IdempotencyStore;
  config: ConfigStore;
  /** The slow-query log (`query_log`): written by the driver itself, read by `brain status --slow-queries`. */
  queryLog: QueryLogStore;
  apiKeys: ApiKeyStore;
  audit: AuditStore;
  /** The scheduler's leases, run history and dead letters (server-wide, not per tenant). */
  jobs: JobStore;
  /** The execution queue: sandboxed Python runs and the workers that claim them (server-wide claims, tenant-scoped reads). */
  executions: ExecutionStore;
}

/** What a driver's in-process vector index holds for one tenant and model (benchmarks, status). */
export interface VectorIndexState {
  /** Whether queries are served by an approximate index (false: exact search). */
  approximate: boolean;
  /** Vectors the index covers. */
  size: number;
  /** Whether it was read from a saved copy instead of built in this process. */
  loaded: boolean;
}

export type {
  StoredApiKey,
  StoredAuditEvent,
  StoredMemory,
  StoredSession,
  StoredVersion,
  TransferFilter,
  VersionKey,
} from '../modules/transfer/transfer-records.js';

/** What an import of memories did with its rows. */
export interface MemoryImportCounts {
  written: number;
  /** Skipped: a memory with the row's id is there (left as it is). */
  existing: number;
  /** Skipped: another live memory holds the row's key, or (unkeyed) its content, in its project. */
  duplicates: number;
}

/**
 * Whole-store export and import for `brain store copy`, `brain export` and `brain import`: pages in id
 * order (narrowed by a filter), imports that skip ids the store already has (so a second copy changes
 * nothing), and counts. An import writes its rows in one transaction.
 */
export interface StoreCopy {
  /** Rows per kind; with a filter, memories and sessions of it, keys and audit events of its tenant. */
  counts(
    filter?: TransferFilter,
  ): Promise<{ memories: number; sessions: number; apiKeys: number; auditEvents: number }>;
  /** Memories with id > `after` (null: from the start), in id order, at most `limit`. */
  exportMemories(after: string | null, limit: number, filter?: TransferFilter): Promise<StoredMemory[]>;
  /** Sessions after (tenant_id, id), in that order, at most `limit`. */
  exportSessions(
    after: { tenant_id: string; id: string } | null,
    limit: number,
    filter?: TransferFilter,
  ): Promise<StoredSession[]>;
  /** API keys (never their hash) with id > `after`, in id order; the filter's tenant only. */
  exportApiKeys(after: string | null, limit: number, filter?: TransferFilter): Promise<StoredApiKey[]>;
  /** Audit events with id > `after`, in id order (ids are time-ordered); the filter's tenant only. */
  exportAuditEvents(
    after: string | null,
    limit: number,
    filter?: TransferFilter,
  ): Promise<StoredAuditEvent[]>;
  /**
   * Writes the rows; a row whose id exists, or whose key or content another live memory holds, is left
   * out. A live row without a vector of the store's active embedding model joins the embedding queue.
   */
  importMemories(rows: StoredMemory[]): Promise<MemoryImportCounts>;
  /** Returns rows written; a session whose (tenant_id, id) exists is left as it is. */
  importSessions(rows: StoredSession[]): Promise<number>;
  /** Writes key records as given (hash included: the caller decides it); an existing id is left. */
  importApiKeys(rows: ApiKeyRecord[]): Promise<number>;
  /** Appends events in the given order; an event whose id exists is left out. */
  importAuditEvents(rows: StoredAuditEvent[]): Promise<number>;
  /** Memory versions (every tenant's) in the store. */
  countVersions(): Promise<number>;
  /** Memory versions after `after` in (tenant_id, memory_id, version) order, at most `limit`. */
  exportVersions(after: VersionKey | null, limit: number, filter?: TransferFilter): Promise<StoredVersion[]>;
  /**
   * Writes the versions whose memory this store holds (same tenant); one it has already, or whose memory
   * it lacks (the memory was left out of the import), is left out. Returns rows written.
   */
  importVersions(rows: StoredVersion[]): Promise<number>;
}

/**
 * A storage engine with its lifecycle, created by one factory per driver (`createSqliteStorage`,
 * `createPostgresStorage`; `createStorage` picks one from config), as a Kysely dialect creates its driver.
 * The composition root calls only these methods: no driver's internals leak past the seam.
 *
 * Order: a factory opens the connection; `migrate()` (or `status()` to refuse an old schema) comes
 * next; `stores()` serves the ports; `close()` drains pending writes (batched access counts) and closes.
 */
export interface Storage {
  readonly engine: StorageEngine;
  /** Where the data is: a file path, or the database URL without its password. */
  readonly location: string;
  /** Applies pending migrations, once even when several processes start at once. */
  migrate(): Promise<MigrationReport>;
  /** The schema version against this build's newest. */
  schema(): Promise<SchemaStatus>;
  /** Readiness of the engine now: reachable, its file or server in place. */
  check(): Promise<HealthCheck>;
  /** The store's size on disk in bytes: the SQLite file and its WAL, or the PostgreSQL database. */
  sizeBytes(): Promise<number>;
  /** The cross-replica change bus's state (PostgreSQL LISTEN or Redis), or null when there is none. */
  changeBus(): HealthCheck | null;
  stores(): StorageStores;
  /** Whole-store export and import (`brain store copy`, `brain export`, `brain import`). */
  copy(): StoreCopy;
  /** Consistency checks and upkeep (`brain db check|vacuum|analyze|checkpoint|reindex`). */
  integrity(): StorageIntegrity;
  /**
   * Starts warming what a driver caches for recall of this tenant and model (SQLite builds its ANN
   * index in a worker); resolves once started, not once done. A driver with nothing to warm resolves.
   */
  prepare(tenantId: string, model: string, dimensions: number): Promise<void>;
  /** Like prepare, but resolves when the cache is ready (benchmarks measure the warm path). */
  warm(tenantId: string, model: string, dimensions: number): Promise<void>;
  /** The vector index of a tenant and model, or null when none is held in this process. */
  vectorIndex(tenantId: string, model: string): VectorIndexState | null;
  /** Writes what is pending, stops background work and closes the connection. Idempotent. */
  close(): Promise<void>;
}
