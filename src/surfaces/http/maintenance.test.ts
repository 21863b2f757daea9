import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBrain } from '../../../test/test-brain.js';
import { openTwoReplicas } from '../../../test/test-http.js';
import { MAINTENANCE_FILE } from '../../modules/maintenance/maintenance.js';
import type { HttpServer } from './http-server.js';

const logger = pino({ level: 'silent' });
let replicas: Awaited<ReturnType<typeof openTwoReplicas>>;
let one: TestBrain;
let a: HttpServer;
let b: HttpServer;

beforeAll(async () => {
  replicas = await openTwoReplicas('brain-maint-', logger);
  ({ one, a, b } = replicas);
});

afterAll(async () => {
  await replicas?.close();
});

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function send(
  server: HttpServer,
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  payload?: Record<string, unknown>,
) {
  return server.app.inject({ method, url, ...(payload ? { payload } : {}) });
}

describe('maintenance mode', () => {
  it('refuses writes and new sessions with 503 and Retry-After on every replica, and keeps reads working', async () => {
    const resumable = (await send(b, 'POST', '/v1/sessions', {})).json().session_id as string;
    await send(b, 'POST', '/v1/memories', { content: 'Written before the maintenance window' });

    const on = await send(a, 'PUT', '/admin/maintenance', { on: true, reason: 'moving the disk' });
    expect(on.statusCode).toBe(200);
    expect(on.json()).toMatchObject({ on: true, source: 'database', reason: 'moving the disk' });
    await wait(1100); // the other replica trusts what it read for a second

    const write = await send(b, 'POST', '/v1/memories', { content: 'Written during the window' });
    expect(write.statusCode).toBe(503);
    expect(write.headers['retry-after']).toBe('60');
    expect(write.json().error).toMatchObject({ code: 'MAINTENANCE' });
    expect(write.json().error.message).toMatch(/maintenance mode \(moving the disk\): remember is refused/);
    expect((await send(b, 'POST', '/v1/sessions', {})).statusCode).toBe(503);
    expect((await send(b, 'POST', '/v1/memories/forget', { all: true })).statusCode).toBe(503);

    // Reads: list, search, get, and resuming a session that exists.
    const list = await send(b, 'GET', '/v1/memories');
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((m: { content: string }) => m.content)).toEqual([
      'Written before the maintenance window',
    ]);
    expect((await send(b, 'POST', '/v1/memories/search', { query: 'maintenance window' })).statusCode).toBe(
      200,
    );
    expect((await send(b, 'POST', '/v1/sessions', { session_id: resumable })).statusCode).toBe(200);
    expect((await send(b, 'GET', '/admin/maintenance')).json()).toMatchObject({ on: true });

    expect((await send(b, 'PUT', '/admin/maintenance', { on: false })).json()).toMatchObject({ on: false });
    await wait(1100);
    expect((await send(a, 'POST', '/v1/memories', { content: 'Written after the window' })).statusCode).toBe(
      201,
    );
  });

  it('is on while a MAINTENANCE_MODE file is in BRAIN_HOME, with its text as the reason', async () => {
    const file = path.join(one.home, MAINTENANCE_FILE);
    fs.writeFileSync(file, 'restoring a backup\n');
    try {
      const write = await send(a, 'POST', '/v1/memories', { content: 'Refused by the file' });
      expect(write.statusCode).toBe(503);
      expect(write.json().error.message).toMatch(/\(restoring a backup\).*remove .*MAINTENANCE_MODE/);
      expect((await send(a, 'GET', '/admin/maintenance')).json()).toMatchObject({ on: true, source: 'file' });
    } finally {
      fs.rmSync(file);
    }
    expect(
      (await send(a, 'POST', '/v1/memories', { content: 'Accepted once the file is gone' })).statusCode,
    ).toBe(201);
  });

  it('answers a bad admin request with 400 naming the field, and changes nothing', async () => {
    const bad = await send(a, 'PUT', '/admin/maintenance', { on: 'yes' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.issues[0]).toMatchObject({ field: 'on' });
    const long = await send(a, 'PUT', '/admin/maintenance', { on: true, reason: 'x'.repeat(201) });
    expect(long.statusCode).toBe(400);
    expect((await send(a, 'GET', '/admin/maintenance')).json()).toMatchObject({ on: false });
  });
});
