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

  it('lists the scheduled jobs with their last run, and warns of dead letters', async () => {
    const before = (await health()).body;
    expect(before.jobs.map((j: { name: string }) => j.name)).toEqual(
      expect.arrayContaining(['vacuum', 'checkpoint', 'expire']),
    );
    const run = await fixture.brain.scheduler.runNow('expire');
    const { status, body } = await health();
    expect(status).toBe(200);
    const expire = body.jobs.find((j: { name: string }) => j.name === 'expire');
    expect(expire).toMatchObject({
      cron: fixture.brain.config.expireCron,
      last_run: { finished_at: run.finishedAt, outcome: 'succeeded', holder: fixture.brain.scheduler.holder },
      last_success_at: run.finishedAt,
      running_on: null,
    });
    expect(body.checks.jobs.status).toBe('ok');
    const jobs = fixture.brain.storage.stores().jobs;
    await jobs.addDeadLetter({
      id: 'dl_health',
      job: 'expire',
      attempts: 4,
      error: 'database locked',
      failedAt: new Date().toISOString(),
    });
    try {
      const warned = await health();
      expect(warned.status).toBe(200);
      expect(warned.body.status).toBe('ok');
      expect(warned.body.checks.jobs).toMatchObject({
        status: 'warn',
        message: expect.stringMatching(/1 dead letters/),
      });
    } finally {
      await jobs.claimRetry('dl_health', new Date().toISOString());
    }
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
