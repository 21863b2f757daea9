import fs from 'node:fs';
import { BrainError, isBrainError } from '../../core/errors.js';
import type { HealthCheck } from '../../core/health.js';
import type { Logger } from '../../core/logger.js';
import type {
  MigrationReport,
  SchemaStatus,
  Storage,
  StorageSettings,
  StorageStores,
  VectorIndexState,
} from '../storage.js';
import { SqliteApiKeyStore } from './sqlite-api-key-store.js';
import { SqliteAuditStore } from './sqlite-audit-store.js';
import { SqliteConfigStore } from './sqlite-config-store.js';
import { openSqliteDatabase, type SqliteDatabase, startCheckpointer } from './sqlite-database.js';
import { SqliteEmbeddingQueue } from './sqlite-embedding-queue.js';
import { SqliteEpisodeStore } from './sqlite-episode-store.js';
import { describeOpenError } from './sqlite-errors.js';
import { SqliteExecutionStore } from './sqlite-execution-store.js';
import { SqliteFileGuard } from './sqlite-file-guard.js';
import { SqliteIdempotencyStore } from './sqlite-idempotency-store.js';
import { sqliteIntegrity } from './sqlite-integrity.js';
import { SqliteJobStore } from './sqlite-job-store.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite, migrationStatus } from './sqlite-migrations.js';
import { sqliteSlowQueryLog } from './sqlite-query-log-store.js';
import { SqliteSessionStore } from './sqlite-session-store.js';
import { sqliteStoreCopy } from './sqlite-store-copy.js';
import type { TextSearchOptions } from './sqlite-text-search.js';
import { SqliteTierStore } from './sqlite-tier-store.js';
import type { SqliteVectorSearch, VectorSearchOptions } from './sqlite-vector-search.js';
import { vectorIndexDirFor } from './vector-index-file.js';

export interface SqliteStorageOptions {
  logger: Logger;
  vectorSearch?: Partial<VectorSearchOptions>;
  textSearch?: Partial<TextSearchOptions>;
}

/** The SQLite driver behind the Storage port; `vectors` is there for its own benchmarks and tests. */
export interface SqliteStorage extends Storage {
  readonly engine: 'sqlite';
  readonly vectors: SqliteVectorSearch;
}

/**
 * Opens the embedded store at `config.dbPath`: the file, its guard (the dev+inode every acknowledged
 * write must reach), the stores and the WAL checkpointer. Throws BrainError (STORAGE_*) with advice when
 * the file cannot be used.
 */
export function createSqliteStorage(
  config: Pick<StorageSettings, 'dbPath' | 'busyTimeoutMs' | 'sqliteCacheMb' | 'slowQueryMs'>,
  options: SqliteStorageOptions,
): SqliteStorage {
  const { logger } = options;
  const dbPath = config.dbPath;
  const db: SqliteDatabase = openSqliteDatabase(dbPath, {
    busyTimeoutMs: config.busyTimeoutMs,
    cacheSizeMb: config.sqliteCacheMb,
  });
  // Right after the open: the file this process opened is the one every acknowledged write must reach.
  const file = new SqliteFileGuard(dbPath, {
    onFailure: (message) => logger.error({ db: dbPath }, message),
  });
  const stopCheckpointer = startCheckpointer(
    db,
    1000,
    (error) => logger.warn({ err: error }, 'WAL checkpoint failed; retrying on the next tick'),
    // Notices a deleted or replaced file within a second even when nothing writes (logged once).
    () => file.check(),
  );
  // Before any store prepares a statement: from here every statement of the stores is timed.
  const slowQueries = sqliteSlowQueryLog(db, { thresholdMs: config.slowQueryMs, logger, file });
  /** A failure of the first reads (a damaged table) says what to do, like the open does. */
  const described = (error: unknown) => (isBrainError(error) ? error : describeOpenError(dbPath, error));
  // Built on first use, after migrate(): the stores prepare their statements against the schema.
  let built: { stores: StorageStores; memories: SqliteMemoryStore } | null = null;
  const open = () => {
    if (built) return built;
    try {
      const memories = new SqliteMemoryStore(db, logger, {
        vectors: { indexDir: vectorIndexDirFor(dbPath), ...options.vectorSearch },
        text: options.textSearch,
        file,
      });
      const stores: StorageStores = {
        memories,
        tiers: new SqliteTierStore(db, { logger, file, flushTouches: () => memories.flushTouches() }),
        sessions: new SqliteSessionStore(db, { logger, file }),
        episodes: new SqliteEpisodeStore(db, { logger, file }),
        embeddingQueue: new SqliteEmbeddingQueue(db, logger, file),
        idempotency: new SqliteIdempotencyStore(db, { logger, file }),
        jobs: new SqliteJobStore(db, { logger, file }),
        executions: new SqliteExecutionStore(db, { logger, file }),
        config: new SqliteConfigStore(db, { logger, file }),
        queryLog: slowQueries.store,
        apiKeys: new SqliteApiKeyStore(db, { logger, file }),
        audit: new SqliteAuditStore(db, { logger, file }),
      };
      built = { stores, memories };
      return built;
    } catch (error) {
      const status = migrationStatus(db);
      if (status.current < status.latest)
        throw new BrainError(
          'STORAGE_ERROR',
          `database ${dbPath} is at schema version ${status.current} but this build needs ${status.latest}: run \`brain migrate\``,
        );
      throw described(error);
    }
  };
  let closed = false;
  return {
    engine: 'sqlite',
    location: dbPath,
    get vectors() {
      return open().memories.vectors;
    },
    async migrate(): Promise<MigrationReport> {
      try {
        return migrateSqlite(db);
      } catch (error) {
        // A migration that meets a lock, a full disk or a damaged page says so, like the open does.
        throw described(error);
      }
    },
    async schema(): Promise<SchemaStatus> {
      try {
        return migrationStatus(db);
      } catch (error) {
        throw described(error);
      }
    },
    changeBus: () => null,
    async sizeBytes() {
      const size = (file: string) => {
        try {
          return fs.statSync(file).size;
        } catch {
          return 0;
        }
      };
      return size(dbPath) + size(`${dbPath}-wal`);
    },
    async check(): Promise<HealthCheck> {
      return db.open ? file.check() : { ok: false, message: 'the database is closed' };
    },
    stores: () => open().stores,
    copy: () => {
      open();
      return sqliteStoreCopy(db, { logger });
    },
    integrity: () => sqliteIntegrity(db, dbPath),
    async prepare(tenantId, model, dimensions) {
      try {
        open().memories.vectors.prepare(tenantId, model, dimensions);
      } catch (error) {
        throw described(error);
      }
    },
    warm: (tenantId, model, dimensions) => open().memories.vectors.warm(tenantId, model, dimensions),
    vectorIndex(tenantId, model): VectorIndexState | null {
      const index = built?.memories.vectors.describe(tenantId, model);
      if (!index) return null;
      return { approximate: index.snapshot === 'hnsw', size: index.vectors, loaded: index.loaded };
    },
    async close() {
      if (closed) return;
      closed = true;
      stopCheckpointer();
      await slowQueries.log?.close();
      if (built) {
        built.memories.vectors.close();
        try {
          built.memories.flushTouches();
        } catch (error) {
          logger.warn({ err: error }, 'could not write the last access counts at shutdown');
        }
      }
      try {
        // SQLite does not checkpoint a moved file on close and leaves its log at the path, where the next
        // open would replay our frames onto whatever file is there now: empty the log first.
        if (db.open) db.pragma(file.check().ok ? 'wal_checkpoint(PASSIVE)' : 'wal_checkpoint(TRUNCATE)');
      } finally {
        db.close();
      }
    },
  };
}
