import type { AddressInfo } from 'node:net';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import type { Registry } from 'prom-client';
import { BrainError, isBrainError } from '../../core/errors.js';
import type { HealthReport } from '../../core/health.js';
import { inspectJson } from '../../core/validation.js';
import { scopeOf as principalScope } from '../../modules/auth/principal.js';
import type { IdempotencyStore } from '../../modules/idempotency/idempotency-store.js';
import type { Maintenance } from '../../modules/maintenance/maintenance.js';
import type { SurfaceContext } from '../brain-services.js';
import {
  countDeferredWrites,
  deferWriteCount,
  type HttpAccess,
  registerResourceMetadata,
  toolAuthorizer,
  useAccess,
} from './access.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerExecutionRoutes } from './execution-routes.js';
import { hostGuardHook } from './host-guard.js';
import { clientErrorHandler, serverTimeoutOptions, trackConnections } from './http-connections.js';
import { BODY_LIMIT_BYTES, type ClientError, errorResponse, isMcpPath } from './http-errors.js';
import { useIdempotency } from './idempotency.js';
import { createMcpSessions, type McpClientKey } from './mcp-sessions.js';
import { createStatelessMcp } from './mcp-stateless.js';
import { createMetrics, type MetricsSources } from './metrics.js';
import { registerApiDocs } from './openapi.js';
import { requestIdHook, requestIdOf, requestLogController } from './request-id.js';
import { registerRestRoutes, type ScopeOf } from './rest-routes.js';

export { BODY_LIMIT_BYTES, toHttpError, toJsonRpcHttpError } from './http-errors.js';

/** Defaults of the optional {@link HttpServerConfig} fields; `brain serve` passes its settings instead. */
export const HTTP_DEFAULTS = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  mcpMaxSessions: 1000,
  mcpMaxSessionsPerClient: 100,
  mcpSessionIdleMs: 30 * 60_000,
} as const;

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
  /** A request (headers and body) not received in full within this is answered 408 and cut. Default 30 s. */
  requestTimeoutMs?: number;
  /** Headers not received within this are answered 408 and cut; capped at `requestTimeoutMs`. Default 10 s. */
  headersTimeoutMs?: number;
  /** Most MCP sessions open at once. At the cap the least recently used idle one is closed. Default 1000. */
  mcpMaxSessions?: number;
  /** Most MCP sessions one client holds; past it, its own least recently used idle one goes. Default 100. */
  mcpMaxSessionsPerClient?: number;
  /** An MCP session with no request for this long (and no open stream) is closed. Default 30 minutes. */
  mcpSessionIdleMs?: number;
  /** Who a session belongs to for the per-client cap. Default: the remote address (`request.ip`). */
  mcpClientKey?: McpClientKey;
  /**
   * Serve MCP without sessions (any replica answers any request; see mcp-stateless.ts) instead of the
   * stateful sessions of mcp-sessions.ts. Default false.
   */
  mcpStateless?: boolean;
  /** Readiness checks served at `GET /health/ready` (the Brain's `health()`); none means always ready. */
  health?: () => Promise<HealthReport>;
  /** Every check, timed, served at `GET /health` (503 when `status` is `failing`); none: no route. */
  healthDocument?: () => Promise<{ status: 'ok' | 'failing' }>;
  /**
   * Authentication, authorisation and rate limits (access.ts); none: every request acts as the local
   * principal in {@link SurfaceContext.scope}, unchecked (tests of other features).
   */
  access?: HttpAccess;
  /** Where `Idempotency-Key`s are kept (the database), and for how long; none: the header is ignored. */
  idempotency?: { store: IdempotencyStore; ttlMs: number };
  /** What the `/admin` routes act on; none: no admin routes. */
  admin?: { maintenance: Maintenance };
  /** Serves Prometheus metrics at `/metrics`, the store's size read from here; none: no metrics. */
  metrics?: Pick<
    MetricsSources,
    | 'databaseSizeBytes'
    | 'jobs'
    | 'backupAgeSeconds'
    | 'embeddingQueueSize'
    | 'tiers'
    | 'executions'
    | 'observeRuns'
    | 'observeMemoryOperations'
  >;
}

/** A built HTTP server. Nothing listens until {@link HttpServer.listen} is called. */
export interface HttpServer {
  /** The Fastify app, ready for `app.inject()` in tests without listening. */
  app: FastifyInstance;
  /** Every route served (method and URL), but the docs page's own assets. */
  routes: { method: string; url: string }[];
  /** The Prometheus registry served at `/metrics` (for a metrics port of its own), or null without metrics. */
  metricsRegistry: Registry | null;
  /** Binds `host:port` and resolves with the URL and the port actually bound. */
  listen(): Promise<{ url: string; port: number }>;
  /**
   * Closes every MCP session and idle connection, cuts requests whose body is still arriving, then stops
   * listening once the requests being processed are done.
   */
  close(): Promise<void>;
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
    parseJson(request, body as string, (error, value) => {
      done(error ? (forbiddenKeyError(String(body)) ?? error) : null, value);
    });
  });
}

/**
 * Fastify refuses a body with a `__proto__` key (or `constructor.prototype`) as "not valid JSON", which
 * sends a client looking for a syntax error that is not there. Trigger: Fastify's parser failed on text
 * that JSON.parse reads. Outcome: a 400 that names the key's path.
 */
function forbiddenKeyError(text: string): (Error & ClientError) | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const proto = inspectJson(parsed, { wellFormedText: false });
  const where = proto ? proto.path.join('.') : 'constructor.prototype';
  const key = proto ? '__proto__' : 'constructor.prototype';
  const message = `request body: ${where}: the key ${key} is not allowed (it cannot be kept); nothing was run`;
  return Object.assign(new Error(message), {
    statusCode: 400,
    code: 'BRAIN_FORBIDDEN_KEY',
    details: { field: where },
  });
}

/** An unknown route is a REST 404; a method /mcp does not serve is a JSON-RPC 405 naming the methods. */
function notFound(request: FastifyRequest, reply: FastifyReply) {
  const path = request.url.split('?')[0];
  const mcp = isMcpPath(path);
  const error: ClientError | BrainError = mcp
    ? { statusCode: 405, message: `${request.method} is not served on /mcp; use POST, GET or DELETE` }
    : new BrainError('NOT_FOUND', `no route for ${request.method} ${path}`);
  const { status, body } = errorResponse(error, path, request.log);
  if (mcp) reply.header('allow', 'POST, GET, DELETE');
  return reply.code(status).send(body);
}

/**
 * Builds the HTTP face: MCP Streamable HTTP on `/mcp` (POST, GET, DELETE), `GET /health/live`, the
 * Host/Origin guard on every route, one JSON error handler and a 1 MiB body limit. The returned app is
 * not listening: call `listen()` to bind, or use `app.inject()` in tests.
 */
export async function createHttpServer(config: HttpServerConfig): Promise<HttpServer> {
  // pino's Logger type carries its own generics; Fastify only needs the base logger surface.
  const logger = config.logger as FastifyBaseLogger;
  const timeouts = {
    requestTimeoutMs: config.requestTimeoutMs ?? HTTP_DEFAULTS.requestTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs ?? HTTP_DEFAULTS.headersTimeoutMs,
  };
  const serverOptions = serverTimeoutOptions(timeouts);
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT_BYTES,
    // Node's requestTimeout covers receiving the request only, so an open SSE response is never cut;
    // the socket inactivity timeout (connectionTimeout) stays off for the same streams, and idle
    // keep-alive connections close after Fastify's 72 s keepAliveTimeout.
    requestTimeout: serverOptions.requestTimeout,
    http: serverOptions,
    clientErrorHandler: clientErrorHandler(timeouts, (socket) => connections.activity(socket), logger),
    // The caller's x-request-id when well-formed, else a UUID (see request-id.ts), on every log line.
    requestIdHeader: false,
    genReqId: requestIdOf,
    logController: requestLogController(),
  });
  // First of all hooks: everything after it runs in the request's context (request-id.ts).
  app.addHook('onRequest', requestIdHook);
  const connections = trackConnections(app);
  let mcpCount = () => 0;
  const metrics = config.metrics
    ? createMetrics({
        ...config.metrics,
        activeSessions: () => mcpCount(),
        recallCache: () => config.services.memory.cacheStats(),
        memoryWrites: () => config.services.memory.writeStats(),
        episodes: () => config.services.episodes.counts(),
      })
    : null;
  const access: HttpAccess | undefined = config.access && {
    ...config.access,
    onAuthFailure: (reason) => {
      config.access?.onAuthFailure?.(reason);
      metrics?.authFailure(reason);
    },
  };
  if (access && metrics) access.limits.onReject = (kind) => metrics.rateLimited(kind);
  metrics?.instrument(app);
  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (route) => {
    if ((route.schema as { hide?: boolean } | undefined)?.hide) return;
    for (const method of [route.method].flat())
      if (method !== 'HEAD') routes.push({ method, url: route.url });
  });
  const surface = {
    ...config,
    ...(metrics ? { observeTool: metrics.observeTool } : {}),
    ...(access ? { authorize: toolAuthorizer(access) } : {}),
  };
  // With authentication, a session belongs to its principal: the cap counts per principal, and no one
  // else can use its id. Without, the remote address stands in.
  const clientKey: McpClientKey =
    config.mcpClientKey ??
    ((request) =>
      request.principal && request.principal.kind !== 'local' ? request.principal.id : request.ip);
  const mcp = config.mcpStateless
    ? createStatelessMcp(surface)
    : createMcpSessions({
        ...surface,
        maxSessions: config.mcpMaxSessions ?? HTTP_DEFAULTS.mcpMaxSessions,
        maxSessionsPerClient: config.mcpMaxSessionsPerClient ?? HTTP_DEFAULTS.mcpMaxSessionsPerClient,
        idleMs: config.mcpSessionIdleMs ?? HTTP_DEFAULTS.mcpSessionIdleMs,
        clientKey,
      });
  mcpCount = () => mcp.count();
  useJsonParser(app);

  app.addHook(
    'onRequest',
    hostGuardHook({
      boundHost: config.host,
      allowedHosts: config.allowedHosts,
      allowedOrigins: config.allowedOrigins,
    }),
  );
  if (access) useAccess(app, access);
  app.setErrorHandler((error, request, reply) => {
    const { status, body } = errorResponse(error, request.url, request.log);
    const retryAfter = isBrainError(error) ? error.details.retry_after_seconds : undefined;
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler(notFound);

  await registerApiDocs(app, config.version);
  if (access) registerResourceMetadata(app, access);
  await app.register(async (rest) => {
    // The REST routes' zod schemas describe them in the OpenAPI document; the services validate the
    // input with the same schemas (and name the field and its limit), so Fastify neither validates nor
    // serializes by schema here.
    rest.setValidatorCompiler(() => (data) => ({ value: data }));
    rest.setSerializerCompiler(() => (data) => JSON.stringify(data));
    const scopeOf: ScopeOf = (request) =>
      request.principal ? principalScope(request.principal) : config.scope;
    if (config.idempotency)
      useIdempotency(rest, {
        ...config.idempotency,
        scopeOf,
        ...(access
          ? { onKey: deferWriteCount, beforeRun: (request) => countDeferredWrites(access, request) }
          : {}),
        // Longer than any request runs: past it the owner is taken for dead and a retry may run.
        leaseMs: Math.max(60_000, 2 * timeouts.requestTimeoutMs),
      });
    registerRestRoutes(rest, config, scopeOf);
    registerExecutionRoutes(rest, config, scopeOf, timeouts.requestTimeoutMs);
    if (config.admin)
      registerAdminRoutes(rest, {
        ...config.admin,
        audit: access?.audit ?? null,
        tiers: config.services.tiers,
      });
  });

  app.get(
    '/health/live',
    {
      config: { access: 'public' },
      schema: { tags: ['health'], summary: 'Answers 200 while the process runs', security: [] },
    },
    async () => ({ status: 'ok', version: config.version }),
  );
  // Readiness: 503 while a check fails (e.g. the database file was deleted), so a balancer stops sending.
  const ready = {
    tags: ['health'],
    summary: 'Answers 200 when the store answers, 503 (with the reasons) when not',
    security: [],
  };
  const healthDocument = config.healthDocument;
  if (healthDocument)
    app.get(
      '/health',
      {
        config: { access: 'public' },
        schema: {
          tags: ['health'],
          summary:
            'Every check (database, migrations, memory, disk, embedder, change bus, maintenance) with its status and latency; 503 when one fails',
          security: [],
        },
      },
      async (_request, reply) => {
        const document = await healthDocument();
        return reply.code(document.status === 'failing' ? 503 : 200).send(document);
      },
    );
  if (metrics)
    app.get(
      '/metrics',
      {
        config: { access: { scope: 'admin', action: 'metrics.read' } },
        schema: { tags: ['metrics'], summary: 'Prometheus metrics (text format)' },
      },
      async (_request, reply) =>
        reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
    );
  app.get('/health/ready', { config: { access: 'public' }, schema: ready }, async (_request, reply) => {
    const report: HealthReport = (await config.health?.()) ?? { status: 'ok', checks: {} };
    return reply.code(report.status === 'ok' ? 200 : 503).send({ ...report, version: config.version });
  });
  app.route({
    method: ['POST', 'GET', 'DELETE'],
    url: '/mcp',
    config: { access: 'authenticated' },
    schema: {
      tags: ['mcp'],
      summary: 'MCP Streamable HTTP (JSON-RPC); see the MCP specification',
    },
    handler: mcp.handle,
  });

  await app.ready();
  return {
    app,
    routes,
    metricsRegistry: metrics?.registry ?? null,
    async listen() {
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { url: `http://${host}:${address.port}`, port: address.port };
    },
    async close() {
      await mcp.closeAll();
      const cut = connections.drain();
      if (cut > 0) logger.info({ cut }, 'shutdown: cut requests whose body was still arriving');
      await app.close();
    },
  };
}
