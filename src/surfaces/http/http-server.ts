import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { type BrainErrorCode, type BrainErrorDetails, isBrainError } from '../../core/errors.js';
import type { SurfaceContext } from '../brain-services.js';
import { createMcpServer } from '../mcp/mcp-server.js';
import { hostGuardHook } from './host-guard.js';

/** Largest request body accepted, in bytes (1 MiB). */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** Wiring of {@link createHttpServer}. */
export interface HttpServerConfig extends SurfaceContext {
  logger: PinoLogger;
  /** Interface to bind, e.g. `127.0.0.1`. Loopback binding turns on the strict Host/Origin guard. */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Extra host names accepted in the Host header. */
  allowedHosts: string[];
  /** Extra origins accepted in the Origin header (browser clients). */
  allowedOrigins: string[];
  /** Most MCP sessions open at once; an initialize beyond it gets 503. Default 1000. */
  maxMcpSessions?: number;
  /** An MCP session with no request for this long (and no open stream) is closed. Default 30 minutes. */
  mcpSessionIdleMs?: number;
}

/** A built HTTP server. Nothing listens until {@link HttpServer.listen} is called. */
export interface HttpServer {
  /** The Fastify app, ready for `app.inject()` in tests without listening. */
  app: FastifyInstance;
  /** Binds `host:port` and resolves with the URL and the port actually bound. */
  listen(): Promise<{ url: string; port: number }>;
  /** Closes every MCP session, then stops listening once in-flight requests are done. */
  close(): Promise<void>;
}

/** The HTTP status for each error code; a code not listed is a 500 with a generic message. */
const STATUS_BY_CODE: Partial<Record<BrainErrorCode, number>> = {
  INVALID_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  UNAVAILABLE: 503,
  MAINTENANCE: 503,
};

/** The code a 4xx raised by Fastify itself is reported under. */
const CODE_BY_STATUS: Record<number, BrainErrorCode> = {
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  429: 'RATE_LIMITED',
};

/** Messages of Fastify's own body errors, rewritten so they say what to send instead. */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'request body is not valid JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request body is empty although content-type is application/json',
  FST_ERR_CTP_BODY_TOO_LARGE: `request body is larger than ${BODY_LIMIT_BYTES} bytes (1 MiB)`,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported content-type; send application/json',
};

interface ErrorBody {
  error: { code: BrainErrorCode; message: string; details: BrainErrorDetails };
}

/**
 * Maps anything thrown in a route to a status and the JSON error body. Only BrainErrors and Fastify's own
 * 4xx errors keep their message; everything else becomes a generic 500 and is logged.
 */
export function toHttpError(error: unknown, log: FastifyBaseLogger): { status: number; body: ErrorBody } {
  if (isBrainError(error)) {
    const status = STATUS_BY_CODE[error.code];
    if (status !== undefined) {
      return {
        status,
        body: { error: { code: error.code, message: error.message, details: error.details } },
      };
    }
  } else if (isClientError(error)) {
    const status = error.statusCode;
    const message = FASTIFY_MESSAGES[error.code ?? ''] ?? error.message;
    const details: BrainErrorDetails = status === 413 ? { limit_bytes: BODY_LIMIT_BYTES } : {};
    const code = CODE_BY_STATUS[status] ?? 'INVALID_INPUT';
    return { status, body: { error: { code, message, details } } };
  }
  log.error({ err: error }, 'request failed with an internal error');
  const message = 'internal error; the server log has the details';
  return { status: 500, body: { error: { code: 'INTERNAL', message, details: {} } } };
}

function isClientError(error: unknown): error is { statusCode: number; code?: string; message: string } {
  if (typeof error !== 'object' || error === null) return false;
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

function jsonRpcError(code: number, message: string) {
  return { jsonrpc: '2.0', error: { code, message }, id: null };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

interface McpSession {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  lastSeen: number;
  /** Responses still streaming (an SSE GET, a long POST): the session is not idle while any is open. */
  open: number;
}

/**
 * The stateful Streamable HTTP sessions: one transport and one McpServer per session id, created by an
 * initialize request and removed when the client sends DELETE, the transport closes, or it idles out.
 */
function createMcpSessions(config: HttpServerConfig) {
  const sessions = new Map<string, McpSession>();
  const maxSessions = config.maxMcpSessions ?? 1000;
  const idleMs = config.mcpSessionIdleMs ?? 30 * 60_000;

  async function openSession(): Promise<StreamableHTTPServerTransport> {
    const server = createMcpServer(config, { logger: config.logger });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, lastSeen: Date.now(), open: 0 });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    // Connect before handling the initialize request so its response flows back through this transport.
    await server.connect(transport);
    return transport;
  }

  /** Picks the transport for a request, or answers it with a JSON-RPC error and returns null. */
  async function transportFor(request: FastifyRequest, reply: FastifyReply) {
    const id = headerValue(request.headers['mcp-session-id']);
    if (id !== undefined) {
      const session = sessions.get(id);
      if (!session) {
        await reply.code(404).send(jsonRpcError(-32001, 'Session not found: send a new initialize request'));
        return null;
      }
      session.lastSeen = Date.now();
      session.open++;
      reply.raw.once('close', () => session.open--);
      return session.transport;
    }
    if (request.method !== 'POST' || !isInitializeRequest(request.body)) {
      await reply
        .code(400)
        .send(jsonRpcError(-32000, 'Bad Request: no valid mcp-session-id header; send initialize first'));
      return null;
    }
    if (sessions.size >= maxSessions) {
      await reply.code(503).send(jsonRpcError(-32000, 'Too many open MCP sessions; try again later'));
      return null;
    }
    return openSession();
  }

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const transport = await transportFor(request, reply);
    if (transport === null) return;
    // From here the SDK writes the response (JSON or an SSE stream) straight to the Node response.
    reply.hijack();
    try {
      await transport.handleRequest(request.raw, reply.raw, request.body);
    } catch (error) {
      request.log.error({ err: error }, 'MCP request failed');
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(500, { 'content-type': 'application/json' });
        reply.raw.end(JSON.stringify(jsonRpcError(-32603, 'Internal server error')));
      }
    }
  }

  const sweep = setInterval(
    () => {
      const cutoff = Date.now() - idleMs;
      for (const session of sessions.values()) {
        if (session.open <= 0 && session.lastSeen < cutoff) void session.server.close();
      }
    },
    Math.min(idleMs, 60_000),
  );
  sweep.unref();

  async function closeAll(): Promise<void> {
    clearInterval(sweep);
    await Promise.allSettled([...sessions.values()].map((s) => s.server.close()));
    sessions.clear();
  }

  return { handle, closeAll };
}

/**
 * Fastify's own JSON parser (same limits and prototype-poisoning checks), except that an empty DELETE
 * body parses as no body: some MCP clients send `content-type: application/json` on their DELETE /mcp.
 */
function useJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (request.method === 'DELETE' && String(body).trim() === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
}

/**
 * Requests in flight per socket, so that a shutdown can close each keep-alive connection as soon as it
 * has nothing in flight. Node's own idle tracking misses sockets that carried an MCP SSE stream, which
 * then hold the process open until the client's keep-alive timeout.
 */
function trackConnections(app: FastifyInstance): { drain(): void } {
  const inFlight = new Map<Socket, number>();
  let draining = false;
  app.server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  app.server.on('request', (request, response) => {
    const socket = request.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      inFlight.set(socket, left);
      if (draining && left === 0) socket.destroy();
    });
  });
  return {
    drain() {
      draining = true;
      for (const [socket, count] of inFlight) if (count === 0) socket.destroy();
    },
  };
}

/**
 * Builds the HTTP face: MCP Streamable HTTP on `/mcp` (POST, GET, DELETE), `GET /health/live`, the
 * Host/Origin guard on every route, one JSON error handler and a 1 MiB body limit. The returned app is
 * not listening: call `listen()` to bind, or use `app.inject()` in tests.
 */
export async function createHttpServer(config: HttpServerConfig): Promise<HttpServer> {
  // pino's Logger type carries its own generics; Fastify only needs the base logger surface.
  const app = Fastify({ loggerInstance: config.logger as FastifyBaseLogger, bodyLimit: BODY_LIMIT_BYTES });
  const mcp = createMcpSessions(config);
  const connections = trackConnections(app);
  useJsonParser(app);

  app.addHook(
    'onRequest',
    hostGuardHook({
      boundHost: config.host,
      allowedHosts: config.allowedHosts,
      allowedOrigins: config.allowedOrigins,
    }),
  );
  app.setErrorHandler((error, request, reply) => {
    const { status, body } = toHttpError(error, request.log);
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: {
        code: 'NOT_FOUND',
        message: `no route for ${request.method} ${request.url.split('?')[0]}`,
        details: {},
      },
    }),
  );

  app.get('/health/live', async () => ({ status: 'ok', version: config.version }));
  app.route({ method: ['POST', 'GET', 'DELETE'], url: '/mcp', handler: mcp.handle });

  await app.ready();
  return {
    app,
    async listen() {
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { url: `http://${host}:${address.port}`, port: address.port };
    },
    async close() {
      await mcp.closeAll();
      connections.drain();
      await app.close();
    },
  };
}
