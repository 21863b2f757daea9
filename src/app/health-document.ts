import fs from 'node:fs';
import v8 from 'node:v8';
import type { HealthCheck } from '../core/health.js';
import type { WorkerRecord } from '../modules/execution/execution-store.js';
import type { HttpServerConfig } from '../surfaces/http/http-server.js';
import type { Brain } from './build-brain.js';
import { lastGoodBackup } from './run-backup.js';

/** One check of `GET /health`: its verdict, how long it took, and a sentence (what to do when not ok). */
export interface HealthItem {
  status: 'ok' | 'warn' | 'fail';
  latency_ms: number;
  message: string;
}

/** What `GET /health` answers: 503 when any check fails; `warn` says "look soon" and keeps 200. */
export interface HealthDocument {
  status: 'ok' | 'failing';
  timestamp: string;
  version: string;
  /** `maintenance` while writes are refused (reads are served, so the process is healthy). */
  mode: 'normal' | 'maintenance';
  engine: 'sqlite' | 'postgres';
  checks: Record<string, HealthItem>;
  /** The scheduled jobs: schedule, next run, last run, and who holds each one's lease now. */
  jobs: JobHealth[];
  /** The execution workers registered by any process on this store (server pools, `brain worker`). */
  workers: WorkerRecord[];
}

/** One job in `GET /health` (times ISO 8601 UTC). */
export interface JobHealth {
  name: string;
  cron: string;
  /** The next time its cron expression names; null when the job is off. */
  next_run: string | null;
  last_run: {
    finished_at: string;
    outcome: string;
    duration_ms: number;
    message: string;
    holder: string;
  } | null;
  last_success_at: string | null;
  /** The process running it now (`host:pid:…`), on any replica, or null. */
  running_on: string | null;
}

/** Free space below which the disk check warns, and below which it fails (of BRAIN_HOME's disk). */
const DISK_WARN = 0.1;
const DISK_FAIL_BYTES = 100 * 1024 * 1024;
/** Share of V8's heap limit above which the memory check warns. */
const HEAP_WARN = 0.9;

async function timed(run: () => Promise<Omit<HealthItem, 'latency_ms'>>): Promise<HealthItem> {
  const start = performance.now();
  let result: Omit<HealthItem, 'latency_ms'>;
  try {
    result = await run();
  } catch (error) {
    result = { status: 'fail', message: error instanceof Error ? error.message : String(error) };
  }
  return { ...result, latency_ms: Math.round((performance.now() - start) * 100) / 100 };
}

const fromCheck = (check: HealthCheck): Omit<HealthItem, 'latency_ms'> => ({
  status: check.ok ? 'ok' : 'fail',
  message: check.message,
});

function mib(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}

/**
 * Every check of a running Brain, each timed: the database answers, its schema is current, the
 * process's memory, BRAIN_HOME's disk, the embedder, the change bus (PostgreSQL LISTEN or Redis) when
 * there are replicas, and maintenance mode.
 */
export async function healthDocument(brain: Brain): Promise<HealthDocument> {
  const { storage, config } = brain;
  const maintenance = await brain.maintenance.state().catch(() => null);
  const checks: Record<string, HealthItem> = {
    database: await timed(async () => fromCheck(await storage.check())),
    migrations: await timed(async () => {
      const { current, latest } = await storage.schema();
      return current === latest
        ? { status: 'ok', message: `schema version ${current}, current` }
        : {
            status: 'fail',
            message: `schema version ${current}, this build needs ${latest}: run \`brain migrate\``,
          };
    }),
    memory: await timed(async () => {
      const { rss, heapUsed } = process.memoryUsage();
      const limit = v8.getHeapStatistics().heap_size_limit;
      const share = heapUsed / limit;
      return {
        status: share > HEAP_WARN ? 'warn' : 'ok',
        message: `rss ${mib(rss)}, heap ${mib(heapUsed)} of ${mib(limit)}${share > HEAP_WARN ? ': near the heap limit (raise --max-old-space-size or lower BRAIN_CACHE_SIZE_MB or BRAIN_SQLITE_CACHE_MB)' : ''}`,
      };
    }),
    disk: await timed(async () => {
      const s = fs.statfsSync(config.home);
      const free = s.bavail * s.bsize;
      const share = free / (s.blocks * s.bsize);
      const status = free < DISK_FAIL_BYTES ? 'fail' : share < DISK_WARN ? 'warn' : 'ok';
      return {
        status,
        message: `${mib(free)} free (${Math.round(share * 100)}%) on the disk of ${config.home}${status === 'ok' ? '' : ': free space before writes fail'}`,
      };
    }),
    embedder: await timed(async () => {
      const e = await brain.embeddings();
      if (e.provider === 'none')
        return { status: 'ok', message: 'no embedder configured: recall is text-only' };
      if (e.problem) return { status: 'warn', message: `${e.problem}; recall is text-only meanwhile` };
      const backlog = e.queue?.backlog ?? 0;
      return {
        status: 'ok',
        message: `${e.model}${backlog > 0 ? `, ${backlog} memories waiting for a vector` : ''}`,
      };
    }),
  };
  let jobs: JobHealth[] = [];
  checks.jobs = await timed(async () => {
    const store = storage.stores().jobs;
    const now = brain.clock.now();
    const [history, leases, deadLetters] = await Promise.all([
      store.history(),
      store.leases(now.toISOString()),
      store.pendingDeadLetters(),
    ]);
    jobs = brain.scheduler.status().map((job) => {
      const h = history.find((x) => x.job === job.name);
      const last = h?.last;
      return {
        name: job.name,
        cron: job.cron,
        next_run: job.nextRun,
        last_run: last
          ? {
              finished_at: last.finishedAt,
              outcome: last.outcome,
              duration_ms: last.durationMs,
              message: last.message,
              holder: last.holder,
            }
          : null,
        last_success_at: h?.lastSuccess?.finishedAt ?? null,
        running_on: leases.find((l) => l.job === job.name)?.holder ?? null,
      };
    });
    const failed = jobs.filter((j) => j.last_run?.outcome === 'failed').map((j) => j.name);
    const problems = [
      ...(failed.length > 0 ? [`last run failed: ${failed.join(', ')}`] : []),
      ...(deadLetters > 0 ? [`${deadLetters} dead letters (brain dead-letter list)`] : []),
    ];
    const running = jobs.filter((j) => j.running_on).map((j) => `${j.name} on ${j.running_on}`);
    return {
      status: problems.length > 0 ? 'warn' : 'ok',
      message:
        problems.length > 0
          ? problems.join('; ')
          : `${jobs.length} jobs${running.length > 0 ? `, running: ${running.join(', ')}` : ''}${brain.config.scheduler ? '' : ' (BRAIN_SCHEDULER is off in this process)'}`,
    };
  });
  checks.backup = await timed(async () => {
    const age = await backupAge(brain);
    const limit = config.backupMaxAgeHours;
    const run =
      config.backupCron === 'off'
        ? 'run `brain backup`'
        : `the backup job runs at "${config.backupCron}"; run \`brain backup\` now`;
    if (!age) return { status: 'warn', message: `no good backup in ${config.backupPath}: ${run}` };
    const hours = age.ageSeconds / 3600;
    const since = `last good backup ${age.what}, ${hours < 1 ? `${Math.round(age.ageSeconds / 60)} min` : `${hours.toFixed(1)} h`} ago`;
    return hours > limit
      ? {
          status: 'warn',
          message: `${since}, older than BRAIN_BACKUP_MAX_AGE_HOURS (${limit}): ${run}, and see \`brain jobs history backup\``,
        }
      : { status: 'ok', message: since };
  });
  let workers: WorkerRecord[] = [];
  checks.execution = await timed(async () => {
    const store = storage.stores().executions;
    const [counts, registered] = await Promise.all([store.counts(), store.workers()]);
    workers = registered;
    const problem = brain.executionProblem();
    const busy = registered.filter((w) => w.state === 'busy').length;
    const queue = `${counts.queued} queued, ${counts.running} running; ${registered.length} workers (${busy} busy)`;
    if (problem) return { status: 'warn', message: `unavailable: ${problem}; ${queue}` };
    if (counts.queued > 0 && registered.length === 0)
      return {
        status: 'warn',
        message: `${queue}: no worker is running; start \`brain serve\` (BRAIN_WORKER_MAX above 0) or \`brain worker\``,
      };
    return { status: 'ok', message: queue };
  });
  const bus = storage.changeBus();
  if (bus) checks[config.redisUrl ? 'redis' : 'change_bus'] = await timed(async () => fromCheck(bus));
  else if (brain.redisCheck) {
    // SQLite: Redis carries the audit streams and shared rate limits, each falling back without it, so
    // an unreachable one is a warning, not a failure of the server.
    const redis = brain.redisCheck;
    checks.redis = await timed(async () => {
      const check = await redis();
      return { status: check.ok ? 'ok' : 'warn', message: check.message };
    });
  }
  checks.maintenance = {
    status: 'ok',
    latency_ms: 0,
    message: maintenance?.on
      ? `on since ${maintenance.since}${maintenance.reason ? ` (${maintenance.reason})` : ''}: writes and new sessions are refused`
      : 'off',
  };
  const failing = Object.values(checks).some((c) => c.status === 'fail');
  return {
    status: failing ? 'failing' : 'ok',
    timestamp: new Date().toISOString(),
    version: brain.version,
    mode: maintenance?.on ? 'maintenance' : 'normal',
    engine: storage.engine,
    checks,
    jobs,
    workers,
  };
}

/**
 * The newest good backup: a file in BRAIN_BACKUP_PATH that matches its checksum, or (on replicas,
 * whose backup job ran on another machine) the backup job's last success, whichever is newer. Both
 * are dated when the backup started (a file is named for its start; a run records its start).
 */
async function backupAge(brain: Brain): Promise<{ ageSeconds: number; what: string } | null> {
  const now = brain.clock.now();
  const [file, history] = await Promise.all([
    lastGoodBackup(brain.config, now),
    brain.storage.stores().jobs.history(),
  ]);
  const success = history.find((h) => h.job === 'backup')?.lastSuccess;
  const started = success ? Date.parse(success.startedAt) : Number.NEGATIVE_INFINITY;
  // A file's name has whole seconds: the run that wrote it started up to a second before.
  if (file && Date.parse(file.time) >= started - 1000)
    return { ageSeconds: file.ageSeconds, what: file.file };
  if (success)
    return {
      ageSeconds: Math.max(0, Math.round((now.getTime() - started) / 1000)),
      what: `by the backup job on ${success.holder}`,
    };
  return null;
}

/** What `/metrics` reads from a running Brain beyond the process's own series (run-serve, tests). */
export function metricsSources(brain: Brain): NonNullable<HttpServerConfig['metrics']> {
  return {
    databaseSizeBytes: () => brain.storage.sizeBytes(),
    jobs: async () => {
      const jobs = brain.storage.stores().jobs;
      const [history, deadLetters] = await Promise.all([jobs.history(), jobs.pendingDeadLetters()]);
      return { history, deadLetters };
    },
    embeddingQueueSize: async () => (await brain.embeddings()).queue?.backlog ?? 0,
    backupAgeSeconds: async () => (await backupAge(brain))?.ageSeconds ?? null,
    tiers: () => brain.services.tiers.utilisation(),
    executions: async () => {
      const store = brain.storage.stores().executions;
      const [counts, workers] = await Promise.all([store.counts(), store.workers()]);
      return { counts, workers };
    },
    observeRuns: (observer) => brain.executions.observe(observer),
    observeMemoryOperations: (observer) => brain.services.memory.observe(observer),
  };
}
