import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import type { Brain } from '../../app/build-brain.js';
import { keysRuntime } from '../../app/run-keys.js';
import { hashApiKey, parseApiKey } from '../../modules/auth/api-keys.js';
import { type CliRuntime, EXIT, runCli } from './cli-program.js';
import { auditFilterOf, parseTimeOption } from './keys-commands.js';

const NOW = new Date('2026-06-10T12:00:00.000Z');

describe('audit options', () => {
  it('reads --since and --until as ISO times or durations back from now, in UTC', () => {
    expect(parseTimeOption('since', '24h', NOW)).toBe('2026-06-09T12:00:00.000Z');
    expect(parseTimeOption('since', '7d', NOW)).toBe('2026-06-03T12:00:00.000Z');
    expect(parseTimeOption('since', '30m', NOW)).toBe('2026-06-10T11:30:00.000Z');
    expect(parseTimeOption('since', '2w', NOW)).toBe('2026-05-27T12:00:00.000Z');
    expect(parseTimeOption('since', '2026-06-01T14:00:00+02:00', NOW)).toBe('2026-06-01T12:00:00.000Z');
    for (const bad of ['yesterday', '24', 'h', '-1d', '1y', ''])
      expect(() => parseTimeOption('since', bad, NOW), bad).toThrow(
        /since: must be an ISO 8601 time .* or a duration/,
      );
  });

  it('builds the filter, defaulting the limit to 50 and refusing a bad one naming the limit', () => {
    expect(auditFilterOf({}, NOW)).toEqual({ limit: 50 });
    expect(
      auditFilterOf(
        {
          tenant: 't',
          principal: 'p',
          action: 'memory.',
          outcome: 'ok',
          since: '1d',
          before: 'aud_1',
          limit: '1000',
        },
        NOW,
      ),
    ).toEqual({
      tenantId: 't',
      principal: 'p',
      action: 'memory.',
      outcome: 'ok',
      since: '2026-06-09T12:00:00.000Z',
      before: 'aud_1',
      limit: 1000,
    });
    for (const limit of ['0', '1001', 'ten', '2.5'])
      expect(() => auditFilterOf({ limit }, NOW), limit).toThrow(
        /limit: must be a whole number from 1 to 1000/,
      );
    expect(() => auditFilterOf({ since: '1h', until: '2h' }, NOW)).toThrow(/until: must be after --since/);
  });
});

let fixture: TestBrain;
let brain: Brain;
let out: string[];
let err: string[];

/**
 * The keys and audit commands against a real Brain on a temp store. Only they run here, so the
 * runtime holds only what they call (the other commands are tested in cli-program.test.ts).
 */
const runtime = {
  version: '9.9.9-test',
  ...keysRuntime((_global, work) => work(brain)),
} as CliRuntime;

async function brainCli(...argv: string[]): Promise<number> {
  return runCli(argv, runtime, { out: (t) => out.push(t), err: (t) => err.push(t) });
}

beforeAll(async () => {
  fixture = await openTestBrain('brain-keys-', { logger: pino({ level: 'silent' }) });
  brain = fixture.brain;
});

afterAll(async () => {
  await fixture?.close();
});

beforeEach(() => {
  out = [];
  err = [];
});

describe('brain keys and brain audit', () => {
  it('creates a key shown once, lists it without its hash, revokes it, and audits both changes', async () => {
    expect(
      await brainCli('keys', 'create', '--tenant', 'team-a', '--scopes', 'read,write', '--name', 'ci'),
    ).toBe(EXIT.ok);
    const text = out.join('\n');
    const key = /brain_k_\S+/.exec(text)?.[0] ?? '';
    const id = parseApiKey(key);
    expect(id).not.toBeNull();
    expect(text).toMatch(/not shown again/);
    const stored = await brain.storage.stores().apiKeys.findByHash(hashApiKey(key));
    expect(stored).toMatchObject({ id, tenantId: 'team-a', scopes: ['read', 'write'], name: 'ci' });

    out = [];
    expect(await brainCli('keys', 'list', '--tenant', 'team-a', '--json')).toBe(EXIT.ok);
    const listed = JSON.parse(out.join('\n')) as Record<string, unknown>[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id, tenantId: 'team-a' });
    expect(listed[0]).not.toHaveProperty('hash');
    expect(out.join('\n')).not.toContain(stored?.hash ?? '?');

    out = [];
    expect(await brainCli('keys', 'revoke', id as string)).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(new RegExp(`revoked API key ${id}`));
    out = [];
    expect(await brainCli('keys', 'revoke', id as string)).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/was already revoked/);
    out = [];
    expect(await brainCli('keys', 'list')).toBe(EXIT.ok);
    expect(out.join('\n')).toBe('no API keys');

    out = [];
    expect(await brainCli('audit', '--action', 'key.', '--json')).toBe(EXIT.ok);
    const events = JSON.parse(out.join('\n')) as { action: string; target: string; principal: string }[];
    expect(events.map((e) => e.action)).toEqual(['key.revoke', 'key.create']); // the second revoke changed nothing
    expect(events[1]).toMatchObject({
      target: id,
      principal: expect.stringMatching(/^cli:.+/),
      tenantId: 'team-a',
      outcome: 'ok',
      details: { scopes: ['read', 'write'], name: 'ci' },
    });
    out = [];
    expect(await brainCli('audit', '--limit', '1')).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/key\.revoke/);
    expect(out.join('\n')).toMatch(/older ones: --before aud_/);
  });

  it('refuses bad options naming the option and limit (exit 2); an unknown key id exits 1', async () => {
    const cases: [string[], RegExp][] = [
      [['keys', 'create', '--tenant', 'a b', '--scopes', 'read'], /tenantId: must be 1 to 64 characters/],
      [['keys', 'create', '--tenant', 't', '--scopes', 'read,root'], /scopes\.1: must be one of read, write/],
      [
        ['keys', 'create', '--tenant', 't', '--scopes', 'read', '--expires-in-days', '0'],
        /expires-in-days: must be a whole number of days from 1 to 3650/,
      ],
      [['keys', 'create', '--scopes', 'read'], /required option '--tenant <id>'/],
      [['audit', '--limit', '5000'], /limit: must be a whole number from 1 to 1000/],
      [['audit', '--outcome', 'maybe'], /Allowed choices are ok, denied, error/],
      [['audit', '--since', 'last week'], /since: must be an ISO 8601 time/],
    ];
    for (const [argv, message] of cases) {
      err = [];
      expect(await brainCli(...argv), argv.join(' ')).toBe(EXIT.usage);
      expect(err.join('\n'), argv.join(' ')).toMatch(message);
    }
    expect(await brain.storage.stores().apiKeys.list({ includeRevoked: true, tenantId: 't' })).toEqual([]);
    err = [];
    expect(await brainCli('keys', 'revoke', 'k_nosuchkey')).toBe(EXIT.failed);
    expect(err.join('\n')).toMatch(/no API key with id k_nosuchkey/);
    err = [];
    expect(await brainCli('keys', 'revoke', 'k_nosuchkey', '--json')).toBe(EXIT.failed);
    expect(JSON.parse(err.join('\n'))).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });
});
