import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runBrain, tempHome } from './brain-process.js';

const homes: string[] = [];
function home(): string {
  const dir = tempHome('brain-keys-e2e-');
  homes.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

/** No user-facing output may carry a JavaScript stack trace. */
function expectNoStack(text: string): void {
  expect(text).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);
}

interface KeyView {
  id: string;
  tenantId: string;
  scopes: string[];
  name: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

describe('brain keys and brain audit, as built', () => {
  it('creates a key shown once, lists it without a secret, revokes it, and audits each change', async () => {
    const env = { BRAIN_HOME: home() };
    const created = await runBrain(
      [
        'keys',
        'create',
        '--tenant',
        'team-a',
        '--scopes',
        'read,write',
        '--name',
        'deploy bot',
        '--expires-in-days',
        '30',
        '--json',
      ],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toMatch(/shown only this once/);
    const { key, record } = JSON.parse(created.stdout) as { key: string; record: KeyView };
    expect(key).toMatch(new RegExp(`^brain_${record.id}_[A-Za-z0-9_-]{43}$`));
    expect(record).toMatchObject({ tenantId: 'team-a', scopes: ['read', 'write'], name: 'deploy bot' });
    expect(Date.parse(record.expiresAt ?? '') - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(record).not.toHaveProperty('hash');

    const human = await runBrain(['keys', 'create', '--tenant', 'team-b', '--scopes', 'admin'], env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/created API key k_\w+ for tenant team-b/);
    expect(human.stdout).toMatch(/\n {2}brain_k_\S+\n/);
    expect(human.stdout).toMatch(/not shown again/);

    const listed = await runBrain(['keys', 'list', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).not.toContain(key);
    expect(listed.stdout).not.toMatch(/hash/);
    expect((JSON.parse(listed.stdout) as KeyView[]).map((k) => k.tenantId)).toEqual(['team-a', 'team-b']);
    const table = await runBrain(['keys', 'list', '--tenant', 'team-a'], env);
    expect(table.stdout).toMatch(new RegExp(`${record.id}\\s+team-a\\s+read,write\\s+active`));

    const revoked = await runBrain(['keys', 'revoke', record.id, '--json'], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: record.id, revokedAt: expect.any(String) });
    const after = await runBrain(['keys', 'list', '--tenant', 'team-a', '--json'], env);
    expect(JSON.parse(after.stdout)).toEqual([]);
    const all = await runBrain(['keys', 'list', '--tenant', 'team-a', '--all'], env);
    expect(all.stdout).toMatch(new RegExp(`${record.id}\\s+team-a\\s+read,write\\s+revoked`));

    const audit = await runBrain(['audit', '--action', 'key.', '--since', '1h', '--json'], env);
    expect(audit.code, audit.stderr).toBe(0);
    const events = JSON.parse(audit.stdout) as {
      action: string;
      tenantId: string;
      target: string;
      principal: string;
      outcome: string;
      details: Record<string, unknown>;
    }[];
    expect(events.map((e) => [e.action, e.tenantId])).toEqual([
      ['key.revoke', 'team-a'],
      ['key.create', 'team-b'],
      ['key.create', 'team-a'],
    ]);
    expect(events[2]).toMatchObject({
      target: record.id,
      principal: expect.stringMatching(/^cli:.+/),
      outcome: 'ok',
      details: { scopes: ['read', 'write'], name: 'deploy bot' },
    });
    expect(JSON.stringify(events)).not.toContain(key);

    const narrowed = await runBrain(['audit', '--tenant', 'team-b'], env);
    expect(narrowed.code, narrowed.stderr).toBe(0);
    expect(narrowed.stdout).toMatch(/^AT\s+OUTCOME\s+ACTION\s+PRINCIPAL\s+TENANT\s+TARGET\s+DETAILS/);
    expect(narrowed.stdout).toMatch(/ok\s+key\.create\s+cli:\S+\s+team-b\s+k_/);
    expect(narrowed.stdout).toMatch(/1 event, newest first/);
    const none = await runBrain(['audit', '--until', '2000-01-01T00:00:00Z'], env);
    expect(none.stdout.trim()).toBe('no audit events');
  });

  it('records memory writes made through the CLI in the audit log', async () => {
    const env = { BRAIN_HOME: home() };
    const saved = await runBrain(['remember', 'The build server is ci.example.org', '--json'], env);
    expect(saved.code, saved.stderr).toBe(0);
    const { id } = JSON.parse(saved.stdout) as { id: string };
    const audit = await runBrain(['audit', '--action', 'memory.', '--outcome', 'ok', '--json'], env);
    expect(audit.code, audit.stderr).toBe(0);
    expect(JSON.parse(audit.stdout)).toEqual([
      expect.objectContaining({ action: 'memory.remember', target: id, tenantId: 'default' }),
    ]);
    // Content stays out of the log unless BRAIN_AUDIT_CONTENT is on.
    expect(audit.stdout).not.toContain('ci.example.org');
  });

  it('records the admin commands (maintenance, rebalance) as the admin routes record them', async () => {
    const env = { BRAIN_HOME: home() };
    for (const args of [
      ['maintenance', 'on', '--reason', 'disk swap'],
      ['maintenance', 'off'],
      ['rebalance'],
    ]) {
      const run = await runBrain(args, env);
      expect(run.code, run.stderr).toBe(0);
    }
    const audit = await runBrain(['audit', '--action', 'admin.', '--json'], env);
    expect(audit.code, audit.stderr).toBe(0);
    const events = JSON.parse(audit.stdout) as { action: string; principal: string; details: unknown }[];
    expect(events.map((e) => e.action).sort()).toEqual([
      'admin.maintenance',
      'admin.maintenance',
      'admin.rebalance',
    ]);
    expect(events.every((e) => e.principal.startsWith('cli:'))).toBe(true);
    expect(events.map((e) => e.details)).toEqual(
      expect.arrayContaining([
        { on: true, reason: 'disk swap' },
        { on: false, reason: null },
      ]),
    );
    // The rebalance of every tenant is also the rebalance job's last run, by the account that ran it.
    const jobs = await runBrain(['jobs', '--json'], env);
    expect(jobs.code, jobs.stderr).toBe(0);
    const rebalance = (
      JSON.parse(jobs.stdout) as { name: string; last: Record<string, unknown> | null }[]
    ).find((j) => j.name === 'rebalance');
    expect(rebalance?.last).toMatchObject({
      trigger: 'manual',
      outcome: 'succeeded',
      holder: expect.stringMatching(/^cli:/),
    });
  });

  it('refuses bad options naming the option and its limit (exit 2); an unknown key id exits 1', async () => {
    const env = { BRAIN_HOME: home() };
    const cases: [string[], RegExp][] = [
      [['keys', 'create', '--tenant', 'team a', '--scopes', 'read'], /tenantId: must be 1 to 64 characters/],
      [
        ['keys', 'create', '--tenant', 't', '--scopes', 'read,sudo'],
        /must be one of read, write, execute, admin/,
      ],
      [['keys', 'create', '--tenant', 't', '--scopes', 'read,read'], /scopes: must not repeat a scope/],
      [
        ['keys', 'create', '--tenant', 't', '--scopes', 'read', '--name', 'n'.repeat(101)],
        /name: must be 1 to 100 characters/,
      ],
      [
        ['keys', 'create', '--tenant', 't', '--scopes', 'read', '--expires-in-days', '9999'],
        /expires-in-days: must be a whole number of days from 1 to 3650/,
      ],
      [['keys', 'create', '--tenant', 't'], /required option '--scopes <list>' not specified/],
      [['audit', '--limit', '0'], /limit: must be a whole number from 1 to 1000/],
      [['audit', '--since', 'recently'], /since: must be an ISO 8601 time .* or a duration/],
      [['audit', '--outcome', 'fine'], /--outcome <outcome>.*Allowed choices are ok, denied, error/],
    ];
    for (const [argv, message] of cases) {
      const result = await runBrain(argv, env);
      expect(result.code, `${argv.join(' ')}\n${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
      expectNoStack(result.stderr);
    }
    const list = await runBrain(['keys', 'list', '--all', '--json'], env);
    expect(JSON.parse(list.stdout)).toEqual([]);

    const unknown = await runBrain(['keys', 'revoke', 'k_0000000000000000'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /no API key with id k_0000000000000000; `brain keys list --all` shows every key/,
    );
    expectNoStack(unknown.stderr);
    const audit = await runBrain(['audit', '--json'], env);
    expect(JSON.parse(audit.stdout)).toEqual([]);
  });
});
