import cluster, { type Worker } from 'node:cluster';
import type pino from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import type { BrainConfig } from '../config/config-schema.js';
import type { Logger } from '../core/logger.js';
import { createMetricsServer } from '../surfaces/http/metrics-server.js';
import { migrateDatabase } from './build-brain.js';
import { serveSafety } from './serve-safety.js';
import { DRAIN_TIMEOUT_MS, waitForShutdown } from './shutdown.js';

/** A worker that dies this soon after its start is not restarted at once: something is wrong with the start. */
const CRASH_LOOP_MS = 5000;

/**
 * `brain serve` with BRAIN_WORKERS > 1: one Node process serves on one core, so the primary process
 * forks that many workers (node:cluster), which share the listening socket (the primary hands
 * connections out in turn) and each run the whole server on the same store: SQLite in WAL mode takes
 * several processes on one file, PostgreSQL several replicas. The primary applies migrations once
 * before forking, restarts a worker that dies (after a pause when it dies at start), and on SIGTERM or
 * SIGINT tells every worker to drain and exits once they all have (0 when every worker exited cleanly).
 */
export async function runServeCluster(
  config: BrainConfig,
  options: { migrate: boolean; workers: number; logger: pino.Logger },
): Promise<void> {
  const { logger, workers } = options;
  if (options.migrate) {
    const report = await migrateDatabase(config, logger as unknown as Logger);
    if (report.applied.length > 0) logger.info({ applied: report.applied }, 'database migrated');
  }
  // The rate limits of every worker are counted here (RateLimiterCluster asks over IPC).
  new RateLimiterClusterMaster();
  let stopping = false;
  const started = new Map<number, number>();
  const fork = (): Worker => {
    const worker = cluster.fork({ NODE_BRAIN_CLUSTER_WORKER: '1' });
    started.set(worker.id, Date.now());
    return worker;
  };
  cluster.on('exit', (worker, code, signal) => {
    const ranMs = Date.now() - (started.get(worker.id) ?? 0);
    started.delete(worker.id);
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal, ranMs }, 'a brain worker died; starting another');
    const delay = ranMs < CRASH_LOOP_MS ? CRASH_LOOP_MS : 0;
    setTimeout(() => {
      if (!stopping) fork();
    }, delay).unref();
  });
  for (let i = 0; i < workers; i++) fork();
  // BRAIN_METRICS_PORT: the workers' series together, asked of each over IPC at every scrape.
  const aggregator = new AggregatorRegistry();
  const metricsServer =
    config.metricsPort !== undefined
      ? createMetricsServer({
          registry: { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() },
          host: serveSafety(config, 0).host,
          port: config.metricsPort,
          logger,
        })
      : null;
  const metricsAt = await metricsServer?.listen();
  logger.info(
    { workers, ...(metricsAt ? { metrics: `${metricsAt.url}/metrics` } : {}) },
    'brain serve: started worker processes',
  );
  const signal = await waitForShutdown(logger);
  stopping = true;
  await metricsServer?.close();
  logger.info({ signal }, 'shutting down: every worker drains its requests');
  const all = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  const exits = all.map(
    (worker) =>
      new Promise<number>((resolve) => {
        if (worker.isDead()) resolve(worker.process.exitCode ?? 0);
        else worker.once('exit', (code) => resolve(code ?? 0));
      }),
  );
  for (const worker of all) worker.process.kill('SIGTERM');
  const timer = setTimeout(() => {
    logger.error({ timeoutMs: DRAIN_TIMEOUT_MS + 2000 }, 'workers did not stop in time: killing them');
    for (const worker of all) worker.process.kill('SIGKILL');
  }, DRAIN_TIMEOUT_MS + 2000);
  const codes = await Promise.all(exits);
  clearTimeout(timer);
  logger.info({ codes }, 'stopped');
  if (codes.some((code) => code !== 0)) process.exitCode = 1;
}

/** Whether this process is a worker forked by {@link runServeCluster} (marked outside the BRAIN_ names, which are settings). */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env.NODE_BRAIN_CLUSTER_WORKER === '1';
}
