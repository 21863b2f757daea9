import fs from 'node:fs';
import path from 'node:path';
import type pino from 'pino';
import type { BrainConfig } from '../config/config-schema.js';
import { type Clock, systemClock } from '../core/clock.js';
import { BrainError } from '../core/errors.js';
import { findUp } from '../core/find-up.js';
import type { HealthCheck, HealthReport } from '../core/health.js';
import type { Logger } from '../core/logger.js';
import type { RequestScope } from '../core/scope.js';
import { type AuditLog, createAuditLog } from '../modules/audit/audit-log.js';
import { auditedEpisodeService } from '../modules/audit/audited-episodes.js';
import { auditedExecutionService } from '../modules/audit/audited-executions.js';
import { auditedMemoryService } from '../modules/audit/audited-services.js';
import { createEmbedder } from '../modules/embeddings/create-embedder.js';
import type { Embedder, EmbedderProvider, EmbedderSettings } from '../modules/embeddings/embedder.js';
import {
  type EmbeddingQueue,
  type EmbeddingQueueStats,
  startEmbeddingQueue,
} from '../modules/embeddings/embedding-queue.js';
import { withEpisodeRecall } from '../modules/episodes/episode-recall.js';
import { createEpisodeService } from '../modules/episodes/episode-service.js';
import { ExecutionPool } from '../modules/execution/execution-pool.js';
import { createExecutionService } from '../modules/execution/execution-service.js';
import { Scheduler } from '../modules/jobs/scheduler.js';
import { MAINTENANCE_FILE, Maintenance } from '../modules/maintenance/maintenance.js';
import { createMemoryService } from '../modules/memory/memory-service.js';
import { TenantQuota } from '../modules/memory/quota.js';
import { createTierService } from '../modules/memory/tier-service.js';
import { createSessionService } from '../modules/sessions/session-service.js';
import { createStorage } from '../storage/create-storage.js';
import type { TextSearchOptions } from '../storage/sqlite/sqlite-text-search.js';
import type { VectorSearchOptions } from '../storage/sqlite/sqlite-vector-search.js';
import type { MigrationReport, Storage } from '../storage/storage.js';
import type { BrainServices } from '../surfaces/brain-services.js';
import { createAppLogger } from './app-logger.js';
import { auditPublisherFor } from './audit-stream.js';
import { executionProblem, executionSettings } from './execution-settings.js';
import { scheduledJobs } from './scheduled-jobs.js';
import { tierSettings } from './tier-settings.js';

/** A running Brain: the services every face uses, and how to shut it down. */
export interface Brain {
  config: BrainConfig;
  services: BrainServices;
  scope: RequestScope;
  version: string;
  logger: pino.Logger;
  embedder: Embedder | null;
  /** The storage engine behind the services (benchmarks warm its caches through it). */
  storage: Storage;
  /** Maintenance mode: the shared `config` row and the MAINTENANCE_MODE file in BRAIN_HOME. */
  maintenance: Maintenance;
  /** The audit log: every write through the services is recorded here; faces add theirs (keys, admin). */
  audit: AuditLog;
  clock: Clock;
  /**
   * The recurring jobs (backups, vacuum, checkpoints, expiry). Built with every Brain so the CLI can run
   * them by hand (`brain jobs run`); only the servers (`brain serve`, `brain mcp`) start its timers.
   */
  scheduler: Scheduler;
  /**
   * This process's execution workers (BRAIN_WORKER_MIN to BRAIN_WORKER_MAX). Built with every Brain;
   * `brain serve`, `brain mcp`, `brain worker` and a waiting `brain exec` start it.
   */
  executions: ExecutionPool;
  /** Why this process cannot run code (what to install), or null. */
  executionProblem(): string | null;
  /**
   * Starts this process's execution workers unless BRAIN_WORKER_MAX is 0 or runs cannot be sandboxed
   * here (logged, with what to install); returns whether they run.
   */
  startExecutionWorkers(): boolean;
  /**
   * Readiness: `failing` when the database is closed, unreachable (PostgreSQL), or its file was deleted
   * or replaced under the process (SQLite; then every write is refused). `GET /health/ready` serves it.
   */
  health(): Promise<HealthReport>;
  /** Redis (BRAIN_REDIS_URL) as the audit stream reaches it, or null without one. */
  redisCheck: (() => Promise<HealthCheck>) | null;
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
  /** SQLite vector-search tuning (benchmarks). */
  vectorSearch?: Partial<VectorSearchOptions>;
  /** SQLite text-search tuning (benchmarks). */
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
  /** The prefix of this process's execution worker ids (`brain worker --id N`); default host:pid. */
  workerName?: string;
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

/** `brain migrate`: applies pending migrations to the configured store and reports them. */
export async function migrateDatabase(config: BrainConfig, logger: Logger): Promise<MigrationReport> {
  const storage = await createStorage(config, { logger });
  try {
    return await storage.migrate();
  } finally {
    await storage.close();
  }
}

/** BRAIN_EMBEDDER's values name the providers of modules/embeddings exactly (checked here at compile time). */
const _providersAgree: Exclude<BrainConfig['embedder'], 'none'> extends EmbedderProvider
  ? EmbedderProvider extends Exclude<BrainConfig['embedder'], 'none'>
    ? true
    : never
  : never = true;
void _providersAgree;

/** The embedder settings of a configuration (also what the benchmarks load providers with). */
export function embedderSettings(config: BrainConfig): EmbedderSettings {
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
  const logger = options.logger ?? createAppLogger({ level: config.logLevel, stream: 'stderr' });
  const serviceLogger = logger as unknown as Logger;
  const storage = await createStorage(config, {
    logger: serviceLogger,
    vectorSearch: options.vectorSearch,
    textSearch: options.textSearch,
  });
  try {
    if (options.migrate ?? config.migrateOnStart) {
      const report = await storage.migrate();
      if (report.applied.length > 0) logger.info({ applied: report.applied }, 'database migrated');
    } else {
      const status = await storage.schema();
      if (status.current < status.latest) {
        throw new BrainError(
          'STORAGE_ERROR',
          `database ${storage.location} is at schema version ${status.current} but this build needs ${status.latest}: run \`brain migrate\``,
        );
      }
    }
  } catch (error) {
    await storage.close();
    throw error;
  }
  const clock = options.clock ?? systemClock;
  const { memories: memoryStore, sessions: sessionStore, embeddingQueue: queueStore } = storage.stores();
  const choice =
    config.embedder === 'none'
      ? { embedder: null, problem: undefined }
      : await createEmbedder(config.embedder, embedderSettings(config), serviceLogger);
  const { embedder } = choice;
  const scope: RequestScope = { tenantId: config.defaultTenant, principal: 'local' };
  // Before the queue starts: a store that fails its first reads stops the start with nothing running.
  if (embedder && options.prepareVectors !== false) {
    try {
      await storage.prepare(scope.tenantId, embedder.model, embedder.dimensions);
    } catch (error) {
      // The first read of the memories: a damaged table fails the start with the advice.
      await embedder.close?.();
      await storage.close();
      throw error;
    }
  }
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
  const maintenance = new Maintenance(storage.stores().config, {
    file: path.join(config.home, MAINTENANCE_FILE),
    clock,
  });
  const publisher = auditPublisherFor(config, serviceLogger);
  const audit = createAuditLog({
    store: storage.stores().audit,
    clock,
    logger: serviceLogger,
    includeContent: config.auditContent,
    ...(publisher ? { publisher } : {}),
  });
  const quota = new TenantQuota(
    memoryStore,
    { memories: config.quotaMemories, bytes: config.quotaBytes },
    clock,
  );
  const memory = createMemoryService({
    maintenance,
    ...(quota.enabled ? { quota } : {}),
    store: memoryStore,
    embedder,
    clock,
    logger: serviceLogger,
    embedderProblem: choice.problem,
    onQueued: () => queue?.kick(),
    // Writes through any process or replica invalidate it: see MemoryStore.changeVersion.
    cacheBytes: config.cacheSizeMb * 1024 * 1024,
    vectorPolicy: {
      ...(config.recallVectorWeight !== undefined ? { weight: config.recallVectorWeight } : {}),
      ...(config.recallVectorFloor !== undefined ? { floor: config.recallVectorFloor } : {}),
      ...(config.recallVectorEvidence !== undefined ? { evidence: config.recallVectorEvidence } : {}),
    },
    ...(config.dedupeThreshold !== undefined ? { dedupeThreshold: config.dedupeThreshold } : {}),
    dedupeReworded: config.dedupeReworded,
  });
  const tiers = createTierService({
    tiers: storage.stores().tiers,
    jobs: storage.stores().jobs,
    memories: memoryStore,
    settings: tierSettings(config),
    clock,
    logger: serviceLogger,
  });
  const audited = auditedMemoryService(memory, audit, { includeContent: config.auditContent });
  // Consolidation writes through the audited service, so a memory it makes is audited like any other.
  const episodes = createEpisodeService({
    store: storage.stores().episodes,
    sessions: sessionStore,
    memory: audited,
    clock,
    logger: serviceLogger,
    maintenance,
    settings: {
      bufferSize: config.episodeBufferSize,
      halfLifeMinutes: config.episodeHalfLifeMinutes,
      consolidateImportance: config.episodeConsolidateImportance,
    },
  });
  const problem = executionProblem(config);
  const pool = new ExecutionPool({
    store: storage.stores().executions,
    settings: executionSettings(config),
    clock,
    logger: serviceLogger,
    audit,
    min: config.workerMin,
    max: config.workerMax,
    ...(options.workerName ? { name: options.workerName } : {}),
  });
  const executions = createExecutionService({
    store: storage.stores().executions,
    clock,
    pool,
    maintenance,
    maxTimeoutMs: config.maxExecutionTimeMs,
    problem,
  });
  const services: BrainServices = {
    memory: withEpisodeRecall(audited, episodes),
    executions: auditedExecutionService(executions, audit),
    sessions: createSessionService({ sessions: sessionStore, memories: memoryStore, clock, maintenance }),
    tiers,
    episodes: auditedEpisodeService(episodes, audit),
  };
  const scheduler = new Scheduler({
    store: storage.stores().jobs,
    jobs: scheduledJobs({
      config,
      storage,
      clock,
      logger: serviceLogger,
      tiers,
      episodes: services.episodes,
    }),
    clock,
    logger: serviceLogger,
    timezone: config.cronTimezone,
    retries: config.jobRetries,
    retryDelayMs: config.jobRetryDelayMs,
  });
  let closed = false;
  return {
    config,
    services,
    maintenance,
    audit,
    clock,
    scheduler,
    executions: pool,
    executionProblem: problem,
    startExecutionWorkers() {
      if (config.workerMax === 0) return false;
      const why = problem();
      if (why) {
        logger.warn({ problem: why }, 'execution workers not started: execute is unavailable');
        return false;
      }
      pool.start();
      return true;
    },
    scope,
    version: brainVersion(),
    logger,
    embedder,
    storage,
    redisCheck: publisher?.check?.bind(publisher) ?? null,
    async health() {
      const database = closed ? { ok: false, message: 'the database is closed' } : await storage.check();
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
      await scheduler.stop();
      await pool.stop();
      await queue?.stop();
      await audit.close();
      await embedder?.close?.();
      await storage.close();
    },
  };
}
