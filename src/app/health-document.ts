import fs from 'node:fs';
import v8 from 'node:v8';
import type { HealthCheck } from '../core/health.js';
import type { Brain } from './build-brain.js';

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
        message: `rss ${mib(rss)}, heap ${mib(heapUsed)} of ${mib(limit)}${share > HEAP_WARN ? ': near the heap limit (raise --max-old-space-size or lower BRAIN_CACHE_SIZE_MB)' : ''}`,
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
  const bus = storage.changeBus();
  if (bus) checks[config.redisUrl ? 'redis' : 'change_bus'] = await timed(async () => fromCheck(bus));
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
  };
}
