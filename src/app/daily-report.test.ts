import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../test/test-brain.js';
import { countLoggedErrors, dailyReport } from './daily-report.js';

const opened: TestBrain[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const t of opened.splice(0)) await t.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const NOW = new Date();
const HOUR = 3_600_000;

describe(`brain report daily on ${process.env.BRAIN_TEST_ENGINE ?? 'sqlite'}`, () => {
  it('counts memories by type and tier, sessions seen, audit failures and slow queries of the last 24 h', async () => {
    const t = await openTestBrain('brain-report-', { env: { BRAIN_PORT: '1' } });
    opened.push(t);
    const { brain } = t;
    for (const [content, type] of [
      ['prefers green tea', 'preference'],
      ['the deploy is on Tuesday', 'event'],
      ['the shed is blue', 'fact'],
      ['the lake is cold', 'fact'],
    ] as const)
      await brain.services.memory.remember(brain.scope, { content, type });
    const listed = await brain.services.memory.list(brain.scope, { limit: 10 });
    await brain.services.memory.forget(brain.scope, {
      id: listed.items.find((m) => m.type === 'event')?.id as string,
    });
    await brain.services.sessions.init(brain.scope, {});
    await brain.audit.record({
      principal: 'local',
      tenantId: 'default',
      action: 'memory.remember',
      target: null,
      outcome: 'error',
      details: {},
    });
    await brain.audit.record({
      principal: 'local',
      tenantId: 'default',
      action: 'memory.forget',
      target: null,
      outcome: 'denied',
      details: {},
    });
    const queryLog = brain.storage.stores().queryLog;
    await queryLog.append([
      { sql: 'SELECT slow', elapsedMs: 120, createdAt: new Date(NOW.getTime() - HOUR).toISOString() },
      {
        sql: 'SELECT slower but old',
        elapsedMs: 900,
        createdAt: new Date(NOW.getTime() - 30 * HOUR).toISOString(),
      },
    ]);

    const report = await dailyReport(brain.config, NOW);
    expect(report).toMatchObject({
      service: { running: false },
      database: { engine: brain.storage.engine },
      memories: { live: 3, forgotten: 1, by_type: { fact: 2, preference: 1 }, by_tier: { hot: 3 } },
      sessions: { total: 1, active: 1 },
      errors: { log: null, audit: { failed: 1, denied: 1 } },
      slow_queries: { count: 1, slowest: { sql: 'SELECT slow', elapsed_ms: 120 } },
    });
    expect(report.database.size_bytes).toBeGreaterThan(0);
  });
});

describe('errors in the log files', () => {
  it('counts error and fatal lines of the last 24 h in error.log and its rotated copies, skipping other lines', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-report-logs-'));
    dirs.push(dir);
    const line = (level: number, hoursAgo: number, msg: string) =>
      JSON.stringify({ level, time: NOW.getTime() - hoursAgo * HOUR, msg });
    fs.writeFileSync(
      path.join(dir, 'error.log'),
      [line(50, 1, 'newest'), 'not json', line(40, 1, 'a warning')].join('\n'),
    );
    fs.writeFileSync(
      path.join(dir, 'error.log.1'),
      [line(60, 5, 'fatal'), line(50, 30, 'too old')].join('\n'),
    );
    const found = await countLoggedErrors(dir, new Date(NOW.getTime() - 24 * HOUR));
    expect(found.count).toBe(2);
    expect(found.files.map((f) => path.basename(f))).toEqual(['error.log', 'error.log.1']);
    expect(found.last).toMatch(/ newest$/);
  });
});
