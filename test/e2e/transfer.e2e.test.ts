import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBrain, tempHome } from './brain-process.js';

const homes: string[] = [];
function home(): string {
  const dir = tempHome('brain-transfer-e2e-');
  homes.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

function expectNoStack(text: string): void {
  expect(text).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);
}

describe('brain export and brain import, as built', () => {
  it('exports JSON lines on stdout with progress on stderr, and imports them into another store', async () => {
    const from = { BRAIN_HOME: home() };
    for (const content of [
      'The deploy runs at noon',
      'Backups go to the NAS',
      'Alice owns the billing service',
    ]) {
      const r = await runBrain(['remember', content, '--tags', 'ops'], from);
      expect(r.code, r.stderr).toBe(0);
    }
    const key = await runBrain(['keys', 'create', '--tenant', 'default', '--scopes', 'read'], from);
    expect(key.code, key.stderr).toBe(0);

    const exported = await runBrain(['export'], from);
    expect(exported.code, exported.stderr).toBe(0);
    // stdout is the data and nothing else: every line is JSON, header first, end line last.
    const lines = exported.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ kind: 'brain-export', version: 1, engine: 'sqlite' });
    expect(lines.at(-1)).toMatchObject({ kind: 'brain-export-end', counts: { memory: 3, api_key: 1 } });
    expect(lines.filter((l) => l.kind === 'memory')).toHaveLength(3);
    const keyLine = lines.find((l) => l.kind === 'api_key');
    expect(keyLine).not.toHaveProperty('hash');
    expect(exported.stdout).not.toContain(key.stdout.match(/brain_k_\S+/)?.[0] ?? 'no key printed');
    // Progress and the summary go to stderr (plain lines: stderr is a pipe here).
    expect(exported.stderr).toMatch(/^export: 0\/\d+ records$/m);
    expect(exported.stderr).toMatch(
      /exported 3 memories, 0 memory versions, 0 sessions, 1 API key, \d+ audit events/,
    );
    expect(exported.stdout).not.toMatch(/exported \d+ memories/);

    const to = { BRAIN_HOME: home() };
    const file = path.join(to.BRAIN_HOME, 'brain.jsonl');
    fs.writeFileSync(file, exported.stdout);
    const imported = await runBrain(['import', file, '--json'], to);
    expect(imported.code, imported.stderr).toBe(0);
    const report = JSON.parse(imported.stdout) as { counts: Record<string, { imported: number }> };
    expect(report.counts.memory?.imported).toBe(3);
    expect(imported.stderr).toMatch(/^check: \d+\/\d+ bytes checked$/m);
    expect(imported.stderr).toMatch(/^import: 0\/\d+ records$/m);

    const recall = await runBrain(['recall', 'who owns billing', '--json'], to);
    expect(recall.code, recall.stderr).toBe(0);
    expect((JSON.parse(recall.stdout) as { hits: { content: string }[] }).hits[0]?.content).toBe(
      'Alice owns the billing service',
    );

    // Again, from stdin: nothing new.
    const again = await runBrain(['import', '-'], to, undefined, exported.stdout);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/imported from stdin \(brain format\)/);
    expect(again.stdout).toMatch(/0 memories of 3 \(3 already there\)/);
    // stdin was copied beside the database and removed after.
    expect(fs.readdirSync(to.BRAIN_HOME).filter((f) => f.startsWith('.import-'))).toEqual([]);
  });

  it('refuses a malformed line with its line number and field, exit 2, no stack trace', async () => {
    const env = { BRAIN_HOME: home() };
    const header = JSON.stringify({
      kind: 'brain-export',
      version: 1,
      schema: 9,
      engine: 'sqlite',
      brain: '0.1.0',
      exported_at: '2026-01-01T00:00:00Z',
      filter: { tenant: null, project: null },
    });
    const session = JSON.stringify({
      kind: 'session',
      tenant_id: 'default',
      id: 'ses-1',
      project: null,
      client: null,
      created_at: '2026-01-01T00:00:00Z',
      last_seen_at: 'last tuesday',
    });
    const r = await runBrain(['import', '-'], env, undefined, `${header}\n${session}\n`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/line 2: last_seen_at: must be an ISO 8601 date-time/);
    expectNoStack(r.stderr);
    const status = await runBrain(['status', '--json'], env);
    expect((JSON.parse(status.stdout) as { memories: number }).memories).toBe(0);
  });
});
