import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { BrainConfig } from '../config/config-schema.js';
import { BrainError } from '../core/errors.js';
import { createHttpServer } from '../surfaces/http/http-server.js';
import { createMetricsServer } from '../surfaces/http/metrics-server.js';
import { createAppLogger } from './app-logger.js';
import { buildBrain } from './build-brain.js';
import { healthDocument, metricsSources } from './health-document.js';
import { buildHttpAccess } from './http-access.js';
import { isClusterWorker } from './serve-cluster.js';
import { serveSafety } from './serve-safety.js';
import { drain, waitForShutdown } from './shutdown.js';

/** Turns a failed listen into an error an operator can act on. */
function describeListenError(config: BrainConfig, error: unknown): BrainError {
  const code = (error as { code?: string }).code;
  const where = `${config.host}:${config.port}`;
  const reason =
    code === 'EADDRINUSE'
      ? 'the address is already in use (another brain serve?); set BRAIN_PORT or --port'
      : code === 'EACCES'
        ? 'permission denied; use a port above 1023'
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
          ? 'no such interface on this machine; check BRAIN_HOST or --host'
          : String((error as Error).message ?? error);
  return new BrainError('CONFIG_ERROR', `cannot listen on ${where}: ${reason}`, {
    host: config.host,
    port: config.port,
  });
}

/**
 * `brain serve`: the HTTP face (MCP Streamable HTTP at /mcp, /health/live) until SIGINT/SIGTERM, then a
 * drain: stop accepting, let in-flight requests finish, close MCP sessions, checkpoint and close the
 * database.
 */
export async function runServe(config: BrainConfig, options: { migrate: boolean }): Promise<void> {
  const logger = createAppLogger({ level: config.logLevel, stream: 'stdout', logPath: config.logPath });
  const brain = await buildBrain(config, { logger, migrate: options.migrate });
  const activeKeys = await brain.storage
    .stores()
    .apiKeys.activeCount(brain.clock.now().toISOString())
    .catch(async (error: unknown) => {
      await brain.close();
      throw error;
    });
  const safety = serveSafety(config, activeKeys);
  if (safety.refusals.length > 0) {
    await brain.close();
    throw new BrainError(
      'CONFIG_ERROR',
      `brain serve refuses to start:\n${safety.refusals.map((r) => `  - ${r}`).join('\n')}`,
      { refusals: safety.refusals },
    );
  }
  for (const warning of safety.warnings) logger.warn(warning);
  const built = buildHttpAccess(brain, logger);
  if (safety.authAlways) built.access.authenticator.requireAlways();
  const http = await createHttpServer({
    access: built.access,
    services: brain.services,
    scope: brain.scope,
    version: brain.version,
    logger,
    health: () => brain.health(),
    healthDocument: () => healthDocument(brain),
    host: safety.host,
    port: config.port,
    allowedHosts: config.allowedHosts,
    allowedOrigins: config.allowedOrigins,
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    mcpMaxSessions: config.mcpMaxSessions,
    mcpMaxSessionsPerClient: config.mcpMaxSessionsPerClient,
    mcpSessionIdleMs: config.mcpSessionIdleMs,
    mcpStateless:
      config.mcpMode === 'stateless' ||
      (config.mcpMode === 'auto' && (!!config.databaseUrl || config.workers > 1)),
    idempotency: { store: brain.storage.stores().idempotency, ttlMs: config.idempotencyTtlHours * 3_600_000 },
    admin: { maintenance: brain.maintenance },
    metrics: metricsSources(brain),
  });
  // Several workers: each hands its registry to the primary, which serves them together on the port.
  if (isClusterWorker() && http.metricsRegistry) AggregatorRegistry.setRegistries([http.metricsRegistry]);
  const metricsServer =
    config.metricsPort !== undefined && http.metricsRegistry && !isClusterWorker()
      ? createMetricsServer({
          registry: http.metricsRegistry,
          host: safety.host,
          port: config.metricsPort,
          logger,
        })
      : null;
  let url: string;
  let metricsUrl: string | undefined;
  try {
    ({ url } = await http.listen());
    metricsUrl = (await metricsServer?.listen())?.url;
  } catch (error) {
    await http.close().catch(() => undefined);
    await metricsServer?.close().catch(() => undefined);
    await built.close();
    await brain.close();
    throw describeListenError({ ...config, host: safety.host }, error);
  }
  // Every worker and replica schedules the jobs; each job's lease in the database runs it once.
  if (config.scheduler) brain.scheduler.start();
  brain.startExecutionWorkers();
  logger.info(
    {
      url,
      mcp: `${url}/mcp`,
      db: `${brain.storage.engine} ${brain.storage.location}`,
      version: brain.version,
      ...(metricsUrl ? { metrics: `${metricsUrl}/metrics` } : {}),
      auth: built.access.authenticator.configured || activeKeys > 0 ? 'on' : 'off (local callers only)',
    },
    'brain is serving',
  );
  const signal = await waitForShutdown(logger);
  logger.info({ signal }, 'shutting down: draining requests');
  await drain(logger, [
    () => http.close(),
    async () => metricsServer?.close(),
    () => built.close(),
    () => brain.close(),
  ]);
  logger.info('stopped');
  await logger.closeFiles();
  // A worker's IPC channel to the primary would keep it alive: closing it lets the process end.
  if (isClusterWorker()) cluster.worker?.disconnect();
}
