import type { BrainConfig } from '../config/config-schema.js';
import { BrainError } from '../core/errors.js';
import { createHttpServer } from '../surfaces/http/http-server.js';
import { createAppLogger } from './app-logger.js';
import { buildBrain } from './build-brain.js';
import { healthDocument } from './health-document.js';
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
  const logger = createAppLogger(config.logLevel, 'stdout');
  const brain = await buildBrain(config, { logger, migrate: options.migrate });
  const http = await createHttpServer({
    services: brain.services,
    scope: brain.scope,
    version: brain.version,
    logger,
    health: () => brain.health(),
    healthDocument: () => healthDocument(brain),
    host: config.host,
    port: config.port,
    allowedHosts: config.allowedHosts,
    allowedOrigins: config.allowedOrigins,
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    mcpMaxSessions: config.mcpMaxSessions,
    mcpMaxSessionsPerClient: config.mcpMaxSessionsPerClient,
    mcpSessionIdleMs: config.mcpSessionIdleMs,
    mcpStateless: config.mcpMode === 'stateless' || (config.mcpMode === 'auto' && !!config.databaseUrl),
    idempotency: { store: brain.storage.stores().idempotency, ttlMs: config.idempotencyTtlHours * 3_600_000 },
    admin: { maintenance: brain.maintenance },
    metrics: { databaseSizeBytes: () => brain.storage.sizeBytes() },
  });
  let url: string;
  try {
    ({ url } = await http.listen());
  } catch (error) {
    await http.close().catch(() => undefined);
    await brain.close();
    throw describeListenError(config, error);
  }
  logger.info(
    {
      url,
      mcp: `${url}/mcp`,
      db: `${brain.storage.engine} ${brain.storage.location}`,
      version: brain.version,
    },
    'brain is serving',
  );
  const signal = await waitForShutdown(logger);
  logger.info({ signal }, 'shutting down: draining requests');
  await drain(logger, [() => http.close(), () => brain.close()]);
  logger.info('stopped');
}
