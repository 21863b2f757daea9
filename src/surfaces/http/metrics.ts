import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EpisodeCounts } from '../../modules/episodes/episode-service.js';
import type { RunObserver } from '../../modules/execution/execution-pool.js';
import {
  EXECUTION_STATUSES,
  type ExecutionStatus,
  type WorkerRecord,
} from '../../modules/execution/execution-store.js';
import type { JobHistory } from '../../modules/jobs/job-store.js';
import type { MemoryOperationObserver } from '../../modules/memory/memory-operations.js';
import type { MemoryWriteStats } from '../../modules/memory/memory-service.js';
import type { RecallCacheStats } from '../../modules/memory/recall-cache.js';
import type { ToolObserver } from '../brain-services.js';

/** The deployment guide's buckets (0.01 … 1 s) with finer ones below 10 ms, where recall lives. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface MetricsSources {
  /** The store's size on disk (SQLite file and WAL, or the PostgreSQL database). */
  databaseSizeBytes(): Promise<number>;
  /** MCP sessions open in this process (0 in stateless mode). */
  activeSessions(): number;
  /** Recall's cache (answers and query vectors) since start, and its size; none: the series stay at 0. */
  recallCache?: () => RecallCacheStats;
  /** The episodic buffer's counts since start (stored, retrieved, consolidated, evicted). */
  episodes?: () => EpisodeCounts;
  /** Memories written since start, by outcome; none: the series stay at 0. */
  memoryWrites?: () => MemoryWriteStats;
  /** The scheduler's history (newest and newest successful run per job) and dead letters not retried. */
  jobs?: () => Promise<{ history: JobHistory[]; deadLetters: number }>;
  /** Seconds since the newest good backup; null when there is none (served as +Inf, so alerts fire). */
  backupAgeSeconds?: () => Promise<number | null>;
  /** Memories waiting for a vector in the embedding queue. */
  embeddingQueueSize?: () => Promise<number>;
  /** Live memories per tier, and the hot tier's use of its capacity (hot / (BRAIN_HOT_MAX × tenants)). */
  tiers?: () => Promise<{ hot: number; warm: number; cold: number; ratio: number; fullest_ratio: number }>;
  /** The execution table's rows per status and the registered workers (every process, every replica). */
  executions?: () => Promise<{ counts: Record<ExecutionStatus, number>; workers: WorkerRecord[] }>;
  /** Subscribes to the runs this process's workers finish (status, wall seconds). */
  observeRuns?: (observer: RunObserver) => void;
  /** Subscribes to the memory service's completed operations and their tiers; none: the counter stays empty. */
  observeMemoryOperations?: (observer: MemoryOperationObserver) => void;
}

export interface Metrics {
  registry: Registry;
  observeTool: ToolObserver;
  /** Times every HTTP request by route and status. */
  instrument(app: FastifyInstance): void;
  /** Counts a refused credential by reason (missing, expired, revoked, …). */
  authFailure(reason: string): void;
  /** Counts a request or write refused by a rate limit. */
  rateLimited(limit: string): void;
}

/**
 * The Prometheus series `/metrics` serves (prom-client, one registry per server): the deployment
 * guide's `brain_mcp_request_duration_seconds{tool,status}`, `brain_memory_operations_total{operation,tier}`
 * (told by the memory service, which knows the tiers; see OperationTier), `brain_database_size_bytes` and
 * `brain_active_sessions`; auth failures, rate-limit rejections and recall's cache; HTTP duration and count by route and status; the process's default metrics.
 */
export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const toolDuration = new Histogram({
    name: 'brain_mcp_request_duration_seconds',
    help: 'MCP tool calls by tool and outcome',
    labelNames: ['tool', 'status'],
    buckets: BUCKETS,
    registers: [registry],
  });
  const operations = new Counter({
    name: 'brain_memory_operations_total',
    help:
      'Successful memory operations of this process (MCP, REST, episode consolidation), by operation and tier: ' +
      'the coldest tier (hot, warm, cold) among the memories it touched; remember counts under hot, where new ' +
      'memories enter; none: it touched no memory; all: a forget by filter or of everything, across tiers',
    labelNames: ['operation', 'tier'],
    registers: [registry],
  });
  sources.observeMemoryOperations?.((operation, tier) => operations.inc({ operation, tier }));
  const httpDuration = new Histogram({
    name: 'brain_http_request_duration_seconds',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: BUCKETS,
    registers: [registry],
  });
  const httpRequests = new Counter({
    name: 'brain_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  // Read from the shared store: every worker reports the same value, so a cluster keeps one, not a sum.
  new Gauge({
    name: 'brain_database_size_bytes',
    help: 'Size of the store on disk',
    registers: [registry],
    aggregator: 'max',
    async collect() {
      this.set(await sources.databaseSizeBytes());
    },
  });
  new Gauge({
    name: 'brain_active_sessions',
    help: 'MCP sessions open in this process',
    registers: [registry],
    collect() {
      this.set(sources.activeSessions());
    },
  });
  const authFailures = new Counter({
    name: 'brain_auth_failures_total',
    help: 'Requests refused for a missing or invalid credential, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'brain_rate_limit_rejections_total',
    help: 'Requests and writes refused by a rate limit (rate: requests per second; daily_writes)',
    labelNames: ['limit'],
    registers: [registry],
  });
  registerRecallCacheMetrics(registry, sources);
  registerEpisodeMetrics(registry, sources);
  registerMemoryWriteMetrics(registry, sources);
  registerStoreGauges(registry, sources);
  registerExecutionMetrics(registry, sources);
  return {
    registry,
    authFailure(reason) {
      authFailures.inc({ reason });
    },
    rateLimited(limit) {
      rateLimited.inc({ limit });
    },
    observeTool(tool, status, seconds) {
      toolDuration.observe({ tool, status }, seconds);
    },
    instrument(app) {
      app.addHook('onResponse', async (request, reply) => {
        // The route's pattern, never the raw URL: ids and query strings would make a series each.
        const route = request.routeOptions.url ?? 'unmatched';
        const labels = { method: request.method, route, status: String(reply.statusCode) };
        httpRequests.inc(labels);
        httpDuration.observe(labels, reply.elapsedTime / 1000);
      });
    },
  };
}

const seconds = (iso: string | undefined | null) => (iso ? Date.parse(iso) / 1000 : undefined);

/** One read shared by the series of a scrape: `read` again only once a second has passed. */
function oncePerScrape<T>(read: () => T): () => T {
  let last: { at: number; value: T } | null = null;
  return () => {
    if (!last || performance.now() - last.at > 1000) last = { at: performance.now(), value: read() };
    return last.value;
  };
}

/**
 * Gauges read from the store at each scrape (the same on every worker and replica, so clusters keep
 * the max, not a sum): the jobs' last runs, dead letters, backup age and the embedding backlog.
 */
function registerStoreGauges(registry: Registry, sources: MetricsSources): void {
  const { jobs, backupAgeSeconds, embeddingQueueSize, tiers } = sources;
  if (jobs) {
    let pending: Promise<{ history: JobHistory[]; deadLetters: number }> | null = null;
    // One read of the store per scrape, shared by the five series below.
    const read = () => {
      pending ??= jobs().finally(() => {
        setImmediate(() => {
          pending = null;
        });
      });
      return pending;
    };
    const perJob = (name: string, help: string, value: (h: JobHistory) => number | undefined): void => {
      new Gauge({
        name,
        help,
        labelNames: ['job'],
        registers: [registry],
        aggregator: 'max',
        async collect() {
          this.reset();
          for (const h of (await read()).history) {
            const v = value(h);
            if (v !== undefined) this.set({ job: h.job }, v);
          }
        },
      });
    };
    perJob('brain_job_last_run_timestamp_seconds', 'When each job last finished (Unix time)', (h) =>
      seconds(h.last?.finishedAt),
    );
    perJob(
      'brain_job_last_success_timestamp_seconds',
      'When each job last finished successfully (Unix time)',
      (h) => seconds(h.lastSuccess?.finishedAt),
    );
    perJob('brain_job_last_duration_seconds', "Each job's last run's duration", (h) =>
      h.last ? h.last.durationMs / 1000 : undefined,
    );
    perJob('brain_job_last_run_failed', '1 when the last run of the job failed every try, else 0', (h) =>
      h.last ? (h.last.outcome === 'failed' ? 1 : 0) : undefined,
    );
    new Gauge({
      name: 'brain_dead_letter_jobs',
      help: 'Job runs that failed every retry and wait in the dead letters (brain dead-letter list)',
      registers: [registry],
      aggregator: 'max',
      async collect() {
        this.set((await read()).deadLetters);
      },
    });
  }
  if (backupAgeSeconds)
    new Gauge({
      name: 'brain_backup_age_seconds',
      help: 'Seconds since the newest good backup (+Inf when there is none)',
      registers: [registry],
      aggregator: 'max',
      async collect() {
        this.set((await backupAgeSeconds()) ?? Number.POSITIVE_INFINITY);
      },
    });
  if (tiers) {
    // One count per scrape for both series: the first collect reads, the other reuses it for a second.
    const read = oncePerScrape(tiers);
    new Gauge({
      name: 'brain_memories',
      help: 'Live memories by tier (hot, warm, cold), every tenant',
      labelNames: ['tier'],
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const counts = await read();
        for (const tier of ['hot', 'warm', 'cold'] as const) this.set({ tier }, counts[tier]);
      },
    });
    new Gauge({
      name: 'brain_hot_tier_utilization_ratio',
      help: 'Hot memories over the hot capacity (BRAIN_HOT_MAX per tenant holding memories); the KPI is 0.8-0.95',
      registers: [registry],
      aggregator: 'max',
      async collect() {
        this.set((await read()).ratio);
      },
    });
    new Gauge({
      name: 'brain_hot_tier_fullest_ratio',
      help: "The fullest tenant's hot memories over BRAIN_HOT_MAX (above 1: it waits for the next rebalance)",
      registers: [registry],
      aggregator: 'max',
      async collect() {
        this.set((await read()).fullest_ratio);
      },
    });
  }
  if (embeddingQueueSize)
    new Gauge({
      name: 'brain_embedding_queue_size',
      help: 'Memories waiting for a vector in the embedding queue',
      registers: [registry],
      aggregator: 'max',
      async collect() {
        this.set(await embeddingQueueSize());
      },
    });
}

/** A worker's state as brain_worker_status's value. */
const WORKER_STATE_VALUE: Record<WorkerRecord['state'], number> = { idle: 0, busy: 1, stopping: 2 };

/**
 * The execution queue: rows per status and the queue's size (read from the shared table at each
 * scrape, so every replica reports the same), each registered worker's state, and the duration and
 * outcome of the runs this process's workers finished.
 */
function registerExecutionMetrics(registry: Registry, sources: MetricsSources): void {
  const { executions, observeRuns } = sources;
  if (executions) {
    const read = oncePerScrape(executions);
    new Gauge({
      name: 'brain_execution_queue_size',
      help: 'Executions queued and not yet claimed by a worker, every tenant',
      registers: [registry],
      aggregator: 'max',
      async collect() {
        this.set((await read()).counts.queued);
      },
    });
    new Gauge({
      name: 'brain_executions',
      help: 'Executions in the table by status (queued, running, succeeded, failed, timed_out, cancelled)',
      labelNames: ['status'],
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const { counts } = await read();
        for (const status of EXECUTION_STATUSES) this.set({ status }, counts[status]);
      },
    });
    new Gauge({
      name: 'brain_worker_status',
      help: 'Each registered execution worker (any process): 0 idle, 1 busy, 2 stopping',
      labelNames: ['worker_id'],
      registers: [registry],
      aggregator: 'max',
      async collect() {
        this.reset();
        for (const w of (await read()).workers) this.set({ worker_id: w.id }, WORKER_STATE_VALUE[w.state]);
      },
    });
  }
  if (observeRuns) {
    const duration = new Histogram({
      name: 'brain_execution_duration_seconds',
      help: "Wall time of the runs this process's workers finished, by status",
      labelNames: ['status'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    });
    const outcomes = new Counter({
      name: 'brain_executions_total',
      help: "Runs this process's workers finished, by status",
      labelNames: ['status'],
      registers: [registry],
    });
    observeRuns((status, seconds) => {
      duration.observe({ status }, seconds);
      outcomes.inc({ status });
    });
  }
}

/** Memories written: stored anew, updated by key, or merged as a duplicate, by the rule that matched. */
function registerMemoryWriteMetrics(registry: Registry, sources: MetricsSources): void {
  new Counter({
    name: 'brain_memory_writes_total',
    help: 'Memories written, by outcome: created, updated (by key), or merged into a memory as an exact duplicate, a rewording or a similar one',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const counts = sources.memoryWrites?.();
      this.reset();
      for (const outcome of ['created', 'updated', 'exact', 'reworded', 'similar'] as const)
        this.inc({ outcome }, counts?.[outcome] ?? 0);
    },
  });
}

/** The episodic buffer: episodes stored, retrieved by recall, consolidated into memories, evicted. */
function registerEpisodeMetrics(registry: Registry, sources: MetricsSources): void {
  new Counter({
    name: 'brain_episodes_total',
    help: 'Episodes of the episodic buffer, by event (stored, retrieved, consolidated, evicted)',
    labelNames: ['event'],
    registers: [registry],
    collect() {
      const counts = sources.episodes?.();
      this.reset();
      for (const event of ['stored', 'retrieved', 'consolidated', 'evicted'] as const)
        this.inc({ event }, counts?.[event] ?? 0);
    },
  });
}

/**
 * Recall's cache: lookups by cache (`results`: whole answers; `query_vectors`: query embeddings) and
 * result, and the bytes it holds against BRAIN_CACHE_SIZE_MB.
 */
function registerRecallCacheMetrics(registry: Registry, sources: MetricsSources): void {
  new Counter({
    name: 'brain_recall_cache_total',
    help: "Recall's cache lookups, by cache (results or query_vectors) and result (hit or miss)",
    labelNames: ['cache', 'result'],
    registers: [registry],
    collect() {
      const stats = sources.recallCache?.();
      this.reset();
      for (const [cache, counts] of [
        ['results', stats?.results],
        ['query_vectors', stats?.queryVectors],
      ] as const) {
        this.inc({ cache, result: 'hit' }, counts?.hits ?? 0);
        this.inc({ cache, result: 'miss' }, counts?.misses ?? 0);
      }
    },
  });
  new Gauge({
    name: 'brain_recall_cache_bytes',
    help: "Bytes recall's cache holds (estimated: answers as JSON text, vectors, keys)",
    registers: [registry],
    collect() {
      this.set(sources.recallCache?.().bytes ?? 0);
    },
  });
}
