import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisSkipReason, redisUrl, surfaceEngine } from '../../../test/services/engines.js';
import { freePort } from '../../../test/services/local-postgres.js';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import { createTestHttpServer } from '../../../test/test-http.js';
import { type Brain, buildBrain } from '../../app/build-brain.js';
import { healthDocument } from '../../app/health-document.js';
import { loadConfig, requireValidConfig } from '../../config/load-config.js';
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

  it('reports the age of the last good backup, and warns when there is none or it is too old', async () => {
    const { brain } = fixture;
    const none = (await health()).body;
    expect(none.status).toBe('ok');
    expect(none.checks.backup).toMatchObject({
      status: 'warn',
      message: expect.stringContaining(`no good backup in ${brain.config.backupPath}`),
    });

    const run = await brain.scheduler.runNow('backup');
    expect(run.outcome).toBe('succeeded');
    const file = fs.readdirSync(brain.config.backupPath).find((n) => /^brain_\d{8}_\d{6}\.\w+\.gz$/.test(n));
    const fresh = (await health()).body.checks.backup;
    expect(fresh).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(/^last good backup .+, \d+ min ago$/),
    });
    expect(fresh.message).toContain(file);

    // A day and more later (BRAIN_BACKUP_MAX_AGE_HOURS is 25): the same backup is too old.
    const later = { ...brain, clock: { now: () => new Date(Date.now() + 26 * 3_600_000) } } as Brain;
    expect((await healthDocument(later)).checks.backup).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/older than BRAIN_BACKUP_MAX_AGE_HOURS \(25\)/),
    });

    // On a replica whose disk does not hold the file, the backup job's success (shared) counts.
    fs.rmSync(`${brain.config.backupPath}/${file}`);
    expect((await health()).body.checks.backup).toMatchObject({
      status: 'ok',
      message: expect.stringContaining(`by the backup job on ${brain.scheduler.holder}`),
    });
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

const redis = redisUrl();
describe.skipIf(!redis)(
  `GET /health with BRAIN_REDIS_URL${redis ? '' : ` (skipped: ${redisSkipReason()})`}`,
  () => {
    it('has a redis check that answers, on either engine', async () => {
      const t = await openTestBrain('brain-health-redis-', {
        logger,
        env: { BRAIN_REDIS_URL: redis as string },
      });
      try {
        // The first check may find the client still connecting: it reconnects by itself within a moment.
        let check = (await healthDocument(t.brain)).checks.redis;
        for (let i = 0; i < 50 && check?.status !== 'ok'; i++) {
          await new Promise((r) => setTimeout(r, 100));
          check = (await healthDocument(t.brain)).checks.redis;
        }
        expect(check).toMatchObject({
          status: 'ok',
          message: expect.stringMatching(/Redis at .* (answers|carries)/),
        });
      } finally {
        await t.close();
      }
    });

    it('on SQLite (whatever the suite engine) warns of an unreachable Redis and stays 200', async () => {
      const url = `redis://127.0.0.1:${await freePort()}`;
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-health-redis-'));
      const config = requireValidConfig(
        loadConfig({ env: { BRAIN_HOME: home, LOG_LEVEL: 'silent', BRAIN_REDIS_URL: url }, cwd: home }),
      );
      const brain = await buildBrain(config, { logger, migrate: true });
      const server = await createTestHttpServer(brain, logger);
      try {
        expect(brain.storage.engine).toBe('sqlite');
        const res = await server.app.inject({ method: 'GET', url: '/health' });
        expect(res.statusCode).toBe(200);
        // Its features fall back without it: a warning, not a failure.
        expect(res.json().checks.redis).toMatchObject({
          status: 'warn',
          message: expect.stringMatching(/rate limits count per process until it is back/),
        });
      } finally {
        await server.close();
        await brain.close();
        fs.rmSync(home, { recursive: true, force: true });
      }
    });
  },
);
