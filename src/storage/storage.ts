import type { HealthCheck } from '../core/health.js';
import type { EmbeddingQueueStore } from '../modules/embeddings/embedding-queue.js';
import type { MemoryStore } from '../modules/memory/memory-store.js';
import type { SessionStore } from '../modules/sessions/session-store.js';

/** The engines Brain stores on: the embedded file (default) or a PostgreSQL server with pgvector. */
export type StorageEngine = 'sqlite' | 'postgres';

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
  sessions: SessionStore;
  embeddingQueue: EmbeddingQueueStore;
}

/** What a driver's in-process vector index holds for one tenant and model (benchmarks, status). */
export interface VectorIndexState {
  /** Whether queries are served by an approximate index (false: exact search). */
  approximate: boolean;
  /** Vectors the index covers. */
  size: number;
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
  stores(): StorageStores;
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
