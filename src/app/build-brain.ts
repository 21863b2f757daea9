import fs from 'node:fs';
import pino from 'pino';
import type { BrainConfig } from '../config/config-schema.js';
import { type Clock, systemClock } from '../core/clock.js';
import { BrainError, isBrainError } from '../core/errors.js';
import { findUp } from '../core/find-up.js';
import type { HealthReport } from '../core/health.js';
import type { Logger } from '../core/logger.js';
import type { RequestScope } from '../core/scope.js';
import { createEmbedder } from '../modules/embeddings/create-embedder.js';
import type { Embedder, EmbedderProvider, EmbedderSettings } from '../modules/embeddings/embedder.js';
import {
  type EmbeddingQueue,
  type EmbeddingQueueStats,
  startEmbeddingQueue,
} from '../modules/embeddings/embedding-queue.js';
import { createMemoryService } from '../modules/memory/memory-service.js';
import { createSessionService } from '../modules/sessions/session-service.js';
import {
  openSqliteDatabase,
  type SqliteDatabase,
  startCheckpointer,
} from '../storage/sqlite/sqlite-database.js';
import { SqliteEmbeddingQueue } from '../storage/sqlite/sqlite-embedding-queue.js';
import { describeOpenError } from '../storage/sqlite/sqlite-errors.js';
import { SqliteFileGuard } from '../storage/sqlite/sqlite-file-guard.js';
import { SqliteMemoryStore } from '../storage/sqlite/sqlite-memory-store.js';
import { type MigrationReport, migrateSqlite, migrationStatus } from '../storage/sqlite/sqlite-migrations.js';
import { SqliteSessionStore } from '../storage/sqlite/sqlite-session-store.js';
import type { TextSearchOptions } from '../storage/sqlite/sqlite-text-search.js';
import type { VectorSearchOptions } from '../storage/sqlite/sqlite-vector-search.js';
import { vectorIndexDirFor } from '../storage/sqlite/vector-index-file.js';
import type { BrainServices } from '../surfaces/brain-services.js';

/** A running Brain: the services every face uses, and how to shut it down. */
export interface Brain {
  config: BrainConfig;
  services: BrainServices;
  scope: RequestScope;
  version: string;
  logger: pino.Logger;
  embedder: Embedder | null;
  /** The SQLite memory store, for benchmarks and maintenance (warming the vector index). */
  memoryStore: SqliteMemoryStore;
  /**
   * Readiness: `failing` when the database is closed or its file was deleted or replaced under the
   * process (then every write is refused). Checks the file now (two stats); `GET /health/ready` serves it.
   */
  health(): HealthReport;
  /** The embedder and its background queue (backlog, throughput). */
  embeddings(): Promise<EmbeddingsStatus>;
  /** Resolves once every stored memory has its vector of the active model (the queue is empty). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export interface BuildBrainOptions {
  logger?: pino.Logger;
  /** Apply pending migrations at start; defaults to config.migrateOnStart. */
  migrate?: boolean;
  clock?: Clock;
  vectorSearch?: Partial<VectorSearchOptions>;
  /** Text-search tuning (benchmarks). */
  textSearch?: Partial<TextSearchOptions>;
  /**
   * Run the background embedding queue (default true). One-shot CLI commands turn it off (their queued
   * vectors wait in the database for the server), except `brain reembed`, which is there to drain it.
   */
  embedQueue?: boolean;
  /**
   * Start building the vector index in the background when the tenant is large (default true). A
   * one-shot CLI command turns it off: it would close before the index is done, and exact search
   * answers one query fast enough.
   */
  prepareVectors?: boolean;
}

/** The name Brain is published under on npm (`brain` itself belongs to an unrelated package). */
export const PACKAGE_NAME = 'brain-memory-server';

/** The package version, from the nearest package.json above this file (src/, dist/ or dist-bench/). */
export function brainVersion(): string {
  let version = '0.0.0';
  findUp(import.meta.url, 'package.json', (file) => {
    if (!fs.existsSync(file)) return false;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name !== PACKAGE_NAME || !pkg.version) return false;
    version = pkg.version;
    return true;
  });
  return version;
}

function openDatabase(config: BrainConfig): SqliteDatabase {
  return openSqliteDatabase(config.dbPath, {
    busyTimeoutMs: config.busyTimeoutMs,
    cacheSizeMb: config.cacheSizeMb,
  });
}

/** `brain migrate`: applies pending migrations and reports them. */
export async function migrateDatabase(config: BrainConfig): Promise<MigrationReport> {
  const db = openDatabase(config);
  try {
    return migrateSqlite(db);
  } finally {
    db.close();
  }
}

/** BRAIN_EMBEDDER's values name the providers of modules/embeddings exactly (checked here at compile time). */
const _providersAgree: Exclude<BrainConfig['embedder'], 'none'> extends EmbedderProvider
  ? EmbedderProvider extends Exclude<BrainConfig['embedder'], 'none'>
    ? true
    : never
  : never = true;
void _providersAgree;

function embedderSettings(config: BrainConfig): EmbedderSettings {
  return {
    model: config.embeddingModel,
    url: config.embeddingUrl,
    apiKey: config.embeddingApiKey,
    dimensions: config.embeddingDimensions,
    timeoutMs: config.embeddingTimeoutMs,
    batchSize: config.embeddingBatchSize,
    breakerMaxFailures: config.circuitBreakerMaxFailures,
    breakerResetMs: config.circuitBreakerResetTimeout,
    modelsDir: config.modelsPath,
    allowRemoteModels: config.allowRemoteModels,
  };
}

/** What `brain status` shows of the embeddings: the provider, its model, and the queue. */
export interface EmbeddingsStatus {
  provider: BrainConfig['embedder'];
  model: string | null;
  dimensions: number | null;
  /** Why the configured provider is not working (not loaded, circuit open), or null. */
  problem: string | null;
  queue: EmbeddingQueueStats | null;
}

/**
 * The composition root: the one place that picks the drivers (SQLite now) and wires config, stores,
 * embedder and services together. Throws BrainError STORAGE_ERROR with a clear message when the
 * database cannot be used.
 */
export async function buildBrain(config: BrainConfig, options: BuildBrainOptions = {}): Promise<Brain> {
  const logger = options.logger ?? pino({ level: config.logLevel }, pino.destination(2));
  const db = openDatabase(config);
  // Right after the open: the dev+inode recorded here are the file every acknowledged write must reach.
  const file = new SqliteFileGuard(config.dbPath, {
    onFailure: (message) => logger.error({ db: config.dbPath }, message),
  });
  try {
    if (options.migrate ?? config.migrateOnStart) {
      const report = migrateSqlite(db);
      if (report.applied.length > 0) logger.info({ applied: report.applied }, 'database migrated');
    } else {
      const status = migrationStatus(db);
      if (status.current < status.latest) {
        throw new BrainError(
          'STORAGE_ERROR',
          `database ${config.dbPath} is at schema version ${status.current} but this build needs ${status.latest}: run \`brain migrate\``,
        );
      }
    }
  } catch (error) {
    db.close();
    // A migration that meets a lock, a full disk or a damaged page says so, like the open does.
    throw isBrainError(error) ? error : describeOpenError(config.dbPath, error);
  }
  const clock = options.clock ?? systemClock;
  const serviceLogger = logger as unknown as Logger;
  const memoryStore = new SqliteMemoryStore(db, serviceLogger, {
    vectors: { indexDir: vectorIndexDirFor(config.dbPath), ...options.vectorSearch },
    text: options.textSearch,
    file,
  });
  const sessionStore = new SqliteSessionStore(db, { logger: serviceLogger, file });
  const queueStore = new SqliteEmbeddingQueue(db, serviceLogger, file);
  const choice =
    config.embedder === 'none'
      ? { embedder: null, problem: undefined }
      : await createEmbedder(config.embedder, embedderSettings(config), serviceLogger);
  const { embedder } = choice;
  let queue: EmbeddingQueue | null = null;
  if (embedder) {
    // A new model (or the first start with vectors): every memory without one of its vectors is queued.
    const queued = await queueStore.switchModel(embedder.model);
    if (queued > 0)
      logger.info(
        { model: embedder.model, queued },
        'embedding model changed; re-embedding in the background',
      );
    if (options.embedQueue !== false)
      queue = startEmbeddingQueue({
        store: queueStore,
        embedder,
        logger: serviceLogger,
        batchSize: config.embeddingBatchSize,
      });
  }
  const scope: RequestScope = { tenantId: config.defaultTenant };
  const services: BrainServices = {
    memory: createMemoryService({
      store: memoryStore,
      embedder,
      clock,
      logger: serviceLogger,
      embedderProblem: choice.problem,
      onQueued: () => queue?.kick(),
      vectorPolicy: {
        ...(config.recallVectorWeight !== undefined ? { weight: config.recallVectorWeight } : {}),
        ...(config.recallVectorFloor !== undefined ? { floor: config.recallVectorFloor } : {}),
        ...(config.recallVectorEvidence !== undefined ? { evidence: config.recallVectorEvidence } : {}),
      },
    }),
    sessions: createSessionService({ sessions: sessionStore, memories: memoryStore, clock }),
  };
  if (embedder && options.prepareVectors !== false) {
    try {
      memoryStore.vectors.prepare(scope.tenantId, embedder.model, embedder.dimensions);
    } catch (error) {
      // The first read of the memories: a damaged table fails the start with the advice, not INTERNAL.
      memoryStore.vectors.close();
      db.close();
      throw isBrainError(error) ? error : describeOpenError(config.dbPath, error);
    }
  }
  const stopCheckpointer = startCheckpointer(
    db,
    1000,
    (error) => logger.warn({ err: error }, 'WAL checkpoint failed; retrying on the next tick'),
    // Notices a deleted or replaced file within a second even when nothing writes (logged once).
    () => file.check(),
  );
  let closed = false;
  return {
    config,
    services,
    scope,
    version: brainVersion(),
    logger,
    embedder,
    memoryStore,
    health() {
      const database = db.open ? file.check() : { ok: false, message: 'the database is closed' };
      return { status: database.ok ? 'ok' : 'failing', checks: { database } };
    },
    async embeddings() {
      return {
        provider: config.embedder,
        model: embedder?.model ?? null,
        dimensions: embedder?.dimensions ?? null,
        problem: choice.problem ?? embedder?.unavailable?.() ?? null,
        queue: queue
          ? await queue.stats()
          : embedder
            ? {
                model: embedder.model,
                backlog: await queueStore.backlog(),
                embedded: 0,
                perSecond: 0,
                lastError: null,
              }
            : null,
      };
    },
    async settle() {
      if (queue) await queue.settle();
    },
    async close() {
      if (closed) return;
      closed = true;
      stopCheckpointer();
      await queue?.stop();
      await embedder?.close?.();
      memoryStore.vectors.close();
      try {
        memoryStore.flushTouches();
      } catch (error) {
        logger.warn({ err: error }, 'could not write the last access counts at shutdown');
      }
      try {
        // SQLite does not checkpoint a moved file on close and leaves its log at the path, where the next
        // open would replay our frames onto whatever file is there now: empty the log first.
        db.pragma(file.check().ok ? 'wal_checkpoint(PASSIVE)' : 'wal_checkpoint(TRUNCATE)');
      } finally {
        db.close();
      }
    },
  };
}
