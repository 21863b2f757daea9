import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer } from '../../../test/test-http.js';
import type { HttpServer } from './http-server.js';
import { createMetricsServer, type MetricsServer } from './metrics-server.js';

const logger = pino({ level: 'silent' });
let fixture: TestBrain;
let http: HttpServer;
let metrics: MetricsServer;
let url: string;

beforeAll(async () => {
  fixture = await openTestBrain('brain-metrics-port-', { logger });
  http = await createTestHttpServer(fixture.brain, logger);
  if (!http.metricsRegistry) throw new Error('the HTTP server was built with metrics');
  metrics = createMetricsServer({ registry: http.metricsRegistry, host: '127.0.0.1', port: 0, logger });
  url = (await metrics.listen()).url;
});

afterAll(async () => {
  await metrics?.close();
  await http?.close();
  await fixture?.close();
});

describe('the metrics port', () => {
  it("serves the HTTP server's registry at GET /metrics in the Prometheus text format", async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // A request on the API is counted in the registry the metrics port serves.
    const live = await http.app.inject({ method: 'GET', url: '/health/live' });
    expect(live.statusCode).toBe(200);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const names = new Set(parsePrometheusTextFormat(text).map((f) => f.name));
    for (const name of ['brain_http_requests_total', 'brain_database_size_bytes', 'brain_active_sessions'])
      expect(names, name).toContain(name);
    expect(text).toMatch(/brain_http_requests_total\{[^}]*route="\/health\/live"[^}]*\} 1/);
  });

  it('answers anything else with a JSON 404', async () => {
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/v1/memories'],
      ['POST', '/metrics'],
    ] as const) {
      const res = await fetch(`${url}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(await res.json()).toEqual({
        error: {
          code: 'NOT_FOUND',
          message: `no route for ${method} ${path}; this port serves GET /metrics only`,
          details: {},
        },
      });
    }
  });

  it('has no registry to serve when the HTTP server has no metrics', async () => {
    const bare = await createTestHttpServer(fixture.brain, logger, { metrics: undefined });
    try {
      expect(bare.metricsRegistry).toBeNull();
    } finally {
      await bare.close();
    }
  });
});
