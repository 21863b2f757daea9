import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { Logger as PinoLogger } from 'pino';

/** Wiring of {@link createMetricsServer}. */
export interface MetricsServerConfig {
  /**
   * What to serve: the HTTP server's own registry (`HttpServer.metricsRegistry`), or, in the primary of
   * several workers, their metrics aggregated (prom-client's AggregatorRegistry).
   */
  registry: { contentType: string; metrics(): Promise<string> };
  /** Interface to bind, e.g. `127.0.0.1`, or `0.0.0.0` for a scraper on another host. */
  host: string;
  /** Port to bind (BRAIN_METRICS_PORT); 0 picks a free one. */
  port: number;
  logger: PinoLogger;
}

/** A metrics listener of its own; nothing listens until {@link MetricsServer.listen} is called. */
export interface MetricsServer {
  /** Binds `host:port` and resolves with the URL and the port actually bound. */
  listen(): Promise<{ url: string; port: number }>;
  close(): Promise<void>;
}

/**
 * Prometheus metrics on a port of their own (BRAIN_METRICS_PORT), so that a scraper needs neither the
 * API's credentials nor a route through its balancer: GET /metrics serves the registry's text, anything
 * else is a JSON 404. Scrapes are not logged (one every few seconds would drown the request log).
 */
export function createMetricsServer(config: MetricsServerConfig): MetricsServer {
  const { registry } = config;
  const app = Fastify({
    loggerInstance: config.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    return reply.code(404).send({
      error: {
        code: 'NOT_FOUND',
        message: `no route for ${request.method} ${path}; this port serves GET /metrics only`,
        details: {},
      },
    });
  });
  app.setErrorHandler((error, request, reply) => {
    request.log.error({ err: error }, 'could not collect the metrics');
    return reply.code(500).send({
      error: {
        code: 'INTERNAL',
        message: 'could not collect the metrics; the server log has the details',
        details: {},
      },
    });
  });
  return {
    async listen() {
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { url: `http://${host}:${address.port}`, port: address.port };
    },
    close: () => app.close(),
  };
}
