import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runBrain, tempHome } from './brain-process.js';

const homes: string[] = [];
function home(): string {
  const dir = tempHome();
  homes.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

/** Rows as the server's slow-query log writes them, into the store another process reads. */
function seed(brainHome: string, rows: [sql: string, elapsedMs: number, createdAt: string][]): void {
  const db = new Database(path.join(brainHome, 'data', 'brain.db'));
  try {
    const insert = db.prepare('INSERT INTO query_log (sql, elapsed_ms, created_at) VALUES (?, ?, ?)');
    for (const row of rows) insert.run(...row);
  } finally {
    db.close();
  }
}

describe('brain status --slow-queries, as built', () => {
  it('lists the slowest recorded statements, slowest first, at most --limit, as text or JSON', async () => {
    const env = { BRAIN_HOME: home(), BRAIN_SLOW_QUERY_MS: '40' };
    const empty = await runBrain(['status', '--slow-queries'], env);
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stdout).toMatch(/no slow statements recorded/);
    expect(empty.stdout).toContain('slower than 40 ms');

    seed(env.BRAIN_HOME, [
      ['SELECT a FROM memories WHERE tenant_id = ?', 60.25, '2026-06-01T10:00:00.000Z'],
      ['UPDATE memories SET access_count = access_count + ? WHERE id = ?', 310.5, '2026-06-01T11:00:00.000Z'],
      ['SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?', 95, '2026-06-01T12:00:00.000Z'],
    ]);
    const json = await runBrain(['status', '--slow-queries', '--limit', '2', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      threshold_ms: 40,
      queries: [
        {
          sql: 'UPDATE memories SET access_count = access_count + ? WHERE id = ?',
          elapsed_ms: 310.5,
          created_at: '2026-06-01T11:00:00.000Z',
        },
        {
          sql: 'SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?',
          elapsed_ms: 95,
          created_at: '2026-06-01T12:00:00.000Z',
        },
      ],
    });

    const text = await runBrain(['status', '--slow-queries'], env);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      '3 slowest statements; statements slower than 40 ms are recorded (BRAIN_SLOW_QUERY_MS)',
    );
    expect(lines[1]).toMatch(/^310\.5 ms {2}2026-06-01T11:00:00\.000Z {2}UPDATE memories SET access_count/);
    expect(lines[3]).toMatch(/^ {1}60\.3 ms {2}2026-06-01T10:00:00\.000Z {2}SELECT a FROM memories/);
  });

  it('refuses a bad --limit, or --limit without --slow-queries, with exit 2', async () => {
    const env = { BRAIN_HOME: home() };
    for (const limit of ['0', '1001', 'ten']) {
      const bad = await runBrain(['status', '--slow-queries', '--limit', limit], env);
      expect(bad.code, limit).toBe(2);
      expect(bad.stderr).toMatch(/limit: must be an integer from 1 to 1000/);
    }
    const alone = await runBrain(['status', '--limit', '5'], env);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/limit: goes with --slow-queries/);
  });
});
