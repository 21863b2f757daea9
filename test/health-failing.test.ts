/**
 * `GET /health` when the store fails under a running server: the SQLite file deleted under the process
 * (the PostgreSQL outage is src/storage/pg/pg-storage.test.ts's, with a cluster of its own).
 */
import fs from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpServer } from '../src/surfaces/http/http-server.js';
import { openTestBrain, type TestBrain } from './test-brain.js';
import { createTestHttpServer } from './test-http.js';

const logger = pino({ level: 'silent' });
let fixture: TestBrain;
let http: HttpServer;

beforeAll(async () => {
  fixture = await openTestBrain('brain-health-fail-', { logger });
  http = await createTestHttpServer(fixture.brain, logger);
});

afterAll(async () => {
  await http?.close();
  await fixture?.close();
});

describe('GET /health on a failing store', () => {
  it('answers 503 naming the database when its file was deleted under the process', async () => {
    expect((await http.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    fs.rmSync(fixture.brain.config.dbPath);
    // The driver notices on its next write (or within a second on its timer).
    await fixture.brain.services.memory
      .remember(fixture.brain.scope, { content: 'x' })
      .catch(() => undefined);
    const res = await http.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'failing', checks: { database: { status: 'fail' } } });
  });
});
