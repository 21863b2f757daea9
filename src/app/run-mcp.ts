import type { BrainConfig } from '../config/config-schema.js';
import type { Logger } from '../core/logger.js';
import { createMcpServer } from '../surfaces/mcp/mcp-server.js';
import { BrainStdioTransport } from '../surfaces/mcp/stdio-transport.js';
import { createAppLogger } from './app-logger.js';
import { buildBrain } from './build-brain.js';
import { drain, waitForShutdown } from './shutdown.js';

/** Resolves when the client closes our stdin: the normal end of a stdio MCP session. */
function stdinClosed(): Promise<string> {
  return new Promise((resolve) => {
    process.stdin.once('end', () => resolve('stdin closed'));
    process.stdin.once('close', () => resolve('stdin closed'));
  });
}

/**
 * `brain mcp`: MCP over stdio for desktop clients. stdout carries protocol only; logs go to stderr.
 * Several clients may each spawn one on the same database file: SQLite WAL and the busy timeout keep
 * every write. Ends when the client closes stdin or on SIGINT/SIGTERM, after in-flight calls finish.
 */
export async function runMcp(config: BrainConfig, options: { migrate: boolean }): Promise<void> {
  const logger = createAppLogger({ level: config.logLevel, stream: 'stderr', logPath: config.logPath });
  const brain = await buildBrain(config, { logger, migrate: options.migrate });
  const server = createMcpServer(
    { services: brain.services, scope: brain.scope, version: brain.version },
    { logger: logger as never },
  );
  const transport = new BrainStdioTransport({ logger: logger as unknown as Logger });
  await server.connect(transport);
  // A protocol error is logged, never silent; and a transport that closes by itself ends the session
  // instead of leaving the process with nothing to do (Node then exits 13, with no word in the log).
  server.server.onerror = (error) => logger.warn({ err: error }, 'mcp protocol error');
  const transportClosed = new Promise<string>((resolve) => {
    server.server.onclose = () => resolve('transport closed');
  });
  if (config.scheduler) brain.scheduler.start();
  brain.startExecutionWorkers();
  logger.info({ db: config.dbPath, version: brain.version }, 'brain mcp ready on stdio');
  const reason = await waitForShutdown(logger, Promise.race([stdinClosed(), transportClosed]));
  logger.info({ reason }, 'mcp session ending');
  await drain(logger, [
    // A call read just before stdin closed is still running its promise chain: let it answer first.
    () => new Promise((resolve) => setImmediate(resolve)),
    () => server.close(),
    () => brain.close(),
  ]);
}
