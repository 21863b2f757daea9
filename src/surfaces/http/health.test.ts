import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { surfaceEngine } from '../../../test/services/engines.js';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer } from '../../../test/test-http.js';
import type { HttpServer } from './http-server.js';

const logger = pino({ level: 'silent' });
let fixture: TestBrain;
let http: HttpServer;

beforeAll(async () => {
  fixture = await openTestBrain('brain-health-', { logger });
  http = await createTestHttpServer(fixture.brain, logger);
});

afterAll(async () => {
  await http?.close();
  await fixture?.close();
});

const health = async () => {
  const res = await http.app.inject({ method: 'GET', url: '/health' });
  return { status: res.statusCode, body: res.json() };
};

describe('GET /health', () => {
  it('reports every check with its status and latency, the version, engine and mode', async () => {
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'ok',
      version: fixture.brain.version,
      mode: 'normal',
      engine: surfaceEngine(),
    });
    expect(Date.parse(body.timestamp)).not.toBeNaN();
    const names = Object.keys(body.checks);
    for (const name of ['database', 'migrations', 'memory', 'disk', 'embedder', 'maintenance'])
      expect(names).toContain(name);
    if (surfaceEngine() === 'postgres') expect(names).toContain('change_bus');
    for (const check of Object.values(body.checks) as {
      status: string;
      latency_ms: number;
      message: string;
    }[]) {
      expect(['ok', 'warn']).toContain(check.status);
      expect(check.latency_ms).toBeGreaterThanOrEqual(0);
      expect(check.message).not.toBe('');
    }
    expect(body.checks.migrations.message).toMatch(/current/);
  });

  it('says maintenance mode and stays 200 while reads are served', async () => {
    await fixture.brain.maintenance.set(true, 'checking health');
    try {
      const { status, body } = await health();
      expect(status).toBe(200);
      expect(body.mode).toBe('maintenance');
      expect(body.checks.maintenance.message).toMatch(/checking health/);
    } finally {
      await fixture.brain.maintenance.set(false);
    }
  });
});
