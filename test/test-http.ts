/** What HTTP surface tests share: an MCP client's headers and initialize request, and a loopback server. */
import net from 'node:net';
import type pino from 'pino';
import type { Brain } from '../src/app/build-brain.js';
import { healthDocument, metricsSources } from '../src/app/health-document.js';
import { buildHttpAccess } from '../src/app/http-access.js';
import {
  createHttpServer,
  type HttpServer,
  type HttpServerConfig,
} from '../src/surfaces/http/http-server.js';
import { openTestBrain } from './test-brain.js';

/** The headers a Streamable HTTP client sends on POST /mcp. */
export const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

/** An MCP initialize request from a client named `client`. */
export function initializeBody(client: string) {
  return {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: client, version: '0' } },
  };
}

/**
 * Brain's HTTP face on 127.0.0.1 (any free port once listening), with `options` over the defaults; the
 * access layer (authentication, policy, rate limits) is built from the Brain's settings as `brain serve`
 * builds it, and closed with the server.
 */
export async function createTestHttpServer(
  brain: Brain,
  logger: pino.Logger,
  options: Partial<HttpServerConfig> = {},
): Promise<HttpServer> {
  const built = buildHttpAccess(brain, logger);
  const server = await createHttpServer({
    access: built.access,
    services: brain.services,
    scope: brain.scope,
    version: brain.version,
    logger,
    host: '127.0.0.1',
    port: 0,
    allowedHosts: [],
    allowedOrigins: [],
    idempotency: {
      store: brain.storage.stores().idempotency,
      ttlMs: brain.config.idempotencyTtlHours * 3_600_000,
    },
    admin: { maintenance: brain.maintenance },
    metrics: metricsSources(brain),
    healthDocument: () => healthDocument(brain),
    ...options,
  });
  const close = server.close.bind(server);
  return Object.assign(server, {
    async close() {
      await close();
      await built.close();
    },
  });
}

/** Two Brains on one store (one SQLite file, or one PostgreSQL database) and their HTTP faces: two replicas. */
export async function openTwoReplicas(prefix: string, logger: pino.Logger) {
  const one = await openTestBrain(prefix, { logger });
  const two = await openTestBrain(prefix, { logger, home: one.home });
  const a = await createTestHttpServer(one.brain, logger);
  const b = await createTestHttpServer(two.brain, logger);
  return {
    one,
    a,
    b,
    async close() {
      await a.close();
      await b.close();
      await two.brain.close();
      await one.close();
    },
  };
}

/** A raw connection: everything received so far, and a promise of all of it once the server closes. */
export function connect(url: string) {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  return { socket, closed, received: () => received };
}
