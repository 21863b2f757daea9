import type { Logger } from '../../core/logger.js';
import type { Storage, StorageSettings, StorageStores } from '../storage.js';
import { PgApiKeyStore } from './pg-api-key-store.js';
import { PgAuditStore } from './pg-audit-store.js';
import { type ChangeBus, createPgChangeBus } from './pg-change-bus.js';
import { PgConfigStore } from './pg-config-store.js';
import { PgDatabase, toStorageError } from './pg-database.js';
import { PgEmbeddingQueue } from './pg-embedding-queue.js';
import { PgEpisodeStore } from './pg-episode-store.js';
import { PgExecutionStore } from './pg-execution-store.js';
import { PgIdempotencyStore } from './pg-idempotency-store.js';
import { pgIntegrity } from './pg-integrity.js';
import { PgJobStore } from './pg-job-store.js';
import { PgMemoryStore } from './pg-memory-store.js';
import { migratePostgres, pgSchemaStatus } from './pg-migrations.js';
import { pgSlowQueryLog } from './pg-query-log-store.js';
import { PgSessionStore } from './pg-session-store.js';
import { pgStoreCopy } from './pg-store-copy.js';
import { PgTierStore } from './pg-tier-store.js';

/**
 * Opens the PostgreSQL driver at BRAIN_DATABASE_URL: the pools, the change bus (LISTEN/NOTIFY, or the
 * given one — Redis when BRAIN_REDIS_URL is set) and the stores. Fails with UNAVAILABLE, naming the
 * server without its password, when the database cannot be reached.
 */
export async function createPostgresStorage(
  settings: StorageSettings,
  options: { logger: Logger; changeBus?: ChangeBus | undefined },
): Promise<Storage> {
  const { logger } = options;
  const db = new PgDatabase(settings, logger);
  let bus: ChangeBus;
  try {
    await db.query('SELECT 1', [], db.primary);
    bus =
      options.changeBus ??
      (await createPgChangeBus(db, settings.databaseUrl as string, logger, {
        connectionTimeoutMillis: settings.databaseConnectTimeoutMs,
      }).catch((error) => {
        throw toStorageError(error, db.where);
      }));
  } catch (error) {
    await db.close();
    throw error;
  }
  const slowQueries = pgSlowQueryLog(db, { thresholdMs: settings.slowQueryMs, logger });
  let stores: (StorageStores & { memories: PgMemoryStore; embeddingQueue: PgEmbeddingQueue }) | null = null;
  // Every change of memories outside the memory store (tier moves, queued vectors, imports) goes
  // through the memory store's own: caches here, change tokens, notices to the other replicas.
  const changed = (tenants: string[], vectors = 0): Promise<void> =>
    open().memories.changed(tenants, vectors);
  const open = () => {
    if (stores) return stores;
    const memories = new PgMemoryStore(db, logger, bus);
    stores = {
      memories,
      tiers: new PgTierStore(db, {
        flushTouches: () => memories.flushTouches(),
        changed: (tenantId) => changed([tenantId]),
      }),
      sessions: new PgSessionStore(db),
      episodes: new PgEpisodeStore(db),
      embeddingQueue: new PgEmbeddingQueue(db, changed),
      idempotency: new PgIdempotencyStore(db),
      jobs: new PgJobStore(db),
      executions: new PgExecutionStore(db),
      config: new PgConfigStore(db),
      queryLog: slowQueries.store,
      apiKeys: new PgApiKeyStore(db),
      audit: new PgAuditStore(db),
    };
    return stores;
  };
  let closed = false;
  return {
    engine: 'postgres',
    location: db.where,
    migrate: () => migratePostgres(db),
    schema: () => pgSchemaStatus(db),
    async check() {
      try {
        await db.primary.query('SELECT 1');
        return { ok: true, message: `PostgreSQL at ${db.where} answers` };
      } catch (error) {
        return {
          ok: false,
          message: `PostgreSQL at ${db.where} is unreachable (${(error as Error).message}); Brain reconnects by itself`,
        };
      }
    },
    stores: open,
    changeBus: () => bus.check(),
    async sizeBytes() {
      const { rows } = await db.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n');
      return Number(rows[0]?.n ?? 0);
    },
    copy: () => pgStoreCopy(db, changed),
    integrity: () => pgIntegrity(db),
    async prepare(_tenantId, model, dimensions) {
      // The index builds in the background; searches are exact until it is there. Fresh vectors move
      // into it in the background too, starting with what an earlier process left fresh.
      const { vectors } = open().memories;
      void vectors.ensureIndex(model, dimensions);
      vectors.indexer.start();
    },
    async warm(_tenantId, model, dimensions) {
      const { vectors } = open().memories;
      await vectors.ensureIndex(model, dimensions);
      await vectors.indexer.flush();
      // The steady state a benchmark measures: what autovacuum would do after a bulk load (set the
      // visibility map, flush GIN's pending list, refresh the planner's statistics) done now, not
      // during the measurement.
      await db.query('VACUUM (ANALYZE, SKIP_LOCKED) memories, memory_embeddings', [], db.primary);
    },
    vectorIndex(_tenantId, model) {
      // The HNSW index lives in the database: "loaded" whenever this process has made sure of it.
      const dims = stores?.memories.vectors.dimensionsOf(model) ?? null;
      return dims === null ? null : { approximate: true, size: 0, loaded: true };
    },
    async close() {
      if (closed) return;
      closed = true;
      await stores?.memories.vectors.indexer.close();
      await stores?.memories.statistics.close();
      await stores?.embeddingQueue
        .releaseLeases()
        .catch((error) =>
          logger.warn({ err: error }, 'could not release embedding-queue leases at shutdown'),
        );
      await stores?.memories
        .flushTouches()
        .catch((error) => logger.warn({ err: error }, 'could not write the last access counts at shutdown'));
      await slowQueries.log?.close();
      await bus.close();
      await db.close();
    },
  };
}
