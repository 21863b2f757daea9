import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openTestBrain, type TestBrain } from '../../../test/test-brain.js';
import type { Brain } from '../../app/build-brain.js';
import { jobsRuntime } from '../../app/run-jobs.js';
import { keysRuntime } from '../../app/run-keys.js';
import { type CliRuntime, EXIT, runCli } from './cli-program.js';

let fixture: TestBrain;
let brain: Brain;
let out: string[];
let err: string[];

/** The data commands run against a real Brain on a temp SQLite file; serving is not exercised here (e2e). */
const runtime: CliRuntime = {
  version: '9.9.9-test',
  async open() {
    return {
      ctx: { services: brain.services, scope: brain.scope, version: brain.version },
      close: async () => {},
    };
  },
  serve: async () => {
    throw new Error('not used in this test');
  },
  mcp: async () => {
    throw new Error('not used in this test');
  },
  status: async () => {
    throw new Error('not used in this test (test/e2e/cli.e2e.test.ts runs brain status)');
  },
  slowQueries: async () => {
    throw new Error('not used in this test (test/e2e/slow-queries.e2e.test.ts runs it)');
  },
  reembed: async () => {
    throw new Error('not used in this test (test/e2e/cli.e2e.test.ts runs brain reembed)');
  },
  evaluate: async () => {
    throw new Error('not used in this test (test/e2e/eval.e2e.test.ts runs brain eval)');
  },
  storeCopy: async () => {
    throw new Error('not used in this test (test/store-copy.test.ts runs brain store copy)');
  },
  maintenance: async (_global, change) =>
    change ? brain.maintenance.set(change.on, change.reason) : brain.maintenance.state(),
  migrate: async () => ({ applied: [], current: 1 }),
  checkConfig: (_global, json) => ({ text: json ? '{"problems":[]}' : 'no problems', ok: true }),
  ...keysRuntime((_global, work) => work(brain)),
  ...jobsRuntime((_global, work) => work(brain)),
  ...notUsed('test/e2e/backup.e2e.test.ts runs it', ['backup', 'listBackups', 'verifyBackup', 'restore']),
  ...notUsed('test/e2e/transfer.e2e.test.ts runs it', ['exportData', 'importData']),
  ...notUsed('test/e2e/execution.e2e.test.ts runs it', ['openForExec', 'worker']),
  ...notUsed('test/e2e/db-doctor.e2e.test.ts runs it', [
    'dbCheck',
    'dbRecover',
    'dbMaintain',
    'dbCheckpoint',
    'dbReindex',
    'doctor',
    'dailyReport',
  ]),
};

/** Runtime members whose commands another test drives end to end: here they throw if reached. */
function notUsed<K extends keyof CliRuntime>(where: string, names: K[]): Pick<CliRuntime, K> {
  const members: Partial<Record<keyof CliRuntime, unknown>> = {};
  for (const name of names)
    members[name] = async () => {
      throw new Error(`${name} is not used in this test (${where})`);
    };
  return members as Pick<CliRuntime, K>;
}

async function brainCli(...argv: string[]): Promise<number> {
  return runCli(argv, runtime, { out: (t) => out.push(t), err: (t) => err.push(t) });
}

async function count(): Promise<number> {
  return (await brain.services.memory.list(brain.scope, {})).total;
}

beforeAll(async () => {
  fixture = await openTestBrain('brain-cli-', { logger: pino({ level: 'silent' }) });
  brain = fixture.brain;
});

afterAll(async () => {
  await fixture?.close();
});

beforeEach(() => {
  out = [];
  err = [];
});

describe('brain CLI', () => {
  it('remembers with tags and recalls the memory, human and --json', async () => {
    expect(
      await brainCli('remember', 'The staging database runs on port 5433', '--tags', 'infra,db', '--json'),
    ).toBe(EXIT.ok);
    const { id, status } = JSON.parse(out.join('\n')) as { id: string; status: string };
    expect(status).toBe('created');
    const stored = await brain.services.memory.get(brain.scope, { id });
    expect(stored.tags).toEqual(['infra', 'db']);

    out = [];
    expect(await brainCli('recall', 'staging database port', '-k', '3')).toBe(EXIT.ok);
    expect(out.join('\n')).toContain(id);
    expect(out.join('\n')).toContain('The staging database runs on port 5433');

    out = [];
    expect(await brainCli('recall', 'staging database port', '--json')).toBe(EXIT.ok);
    const result = JSON.parse(out.join('\n')) as { mode: string; hits: { id: string; signals: object }[] };
    expect(result.mode).toBe('hybrid');
    expect(result.hits[0]?.id).toBe(id);
    expect(result.hits[0]?.signals).toHaveProperty('text_score');

    // --supersedes: the new memory replaces it, and recall leaves the old one out.
    out = [];
    expect(
      await brainCli('remember', 'The staging database moved to port 6543', '--supersedes', id, '--json'),
    ).toBe(EXIT.ok);
    const moved = (JSON.parse(out.join('\n')) as { id: string }).id;
    expect((await brain.services.memory.get(brain.scope, { id })).superseded_by).toBe(moved);
    out = [];
    expect(await brainCli('recall', 'staging database port', '--json')).toBe(EXIT.ok);
    expect((JSON.parse(out.join('\n')) as { hits: { id: string }[] }).hits.map((h) => h.id)).toEqual([moved]);
    err = [];
    expect(await brainCli('remember', 'The staging database is gone', '--supersedes', id)).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/supersedes: memory .* was superseded by .* already/);
  });

  it('rejects bad input naming the field and the limit, exits 2 and writes nothing', async () => {
    const before = await count();
    expect(await brainCli('recall', 'anything', '-k', '500')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/k: must be from 1 to 100/);
    err = [];
    expect(await brainCli('recall', 'anything', '-k', 'many')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/k: must be a number/);
    err = [];
    expect(await brainCli('remember', '   ')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/content: must not be empty/);
    err = [];
    expect(await brainCli('remember', 'x'.repeat(70_000))).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/content: must be at most 65536 bytes/);
    err = [];
    expect(await brainCli('remember', 'ok text', '--importance', '3')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/importance: must be between 0 and 1/);
    err = [];
    expect(await brainCli('remember', 'ok text', '--metadata', '{not json')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/metadata: must be a JSON object/);
    err = [];
    const tags = Array.from({ length: 65 }, (_, i) => `t${i}`).join(',');
    expect(await brainCli('remember', 'ok text', '--tags', tags, '--json')).toBe(EXIT.usage);
    const json = JSON.parse(err.join('\n')) as { error: { code: string; message: string } };
    expect(json.error.code).toBe('INVALID_INPUT');
    expect(json.error.message).toMatch(/tags: must have at most 64 tags/);
    expect(await count()).toBe(before);
  });

  it('get prints a memory in full; an unknown id exits 3 with a clear message', async () => {
    const { id } = await brain.services.memory.remember(brain.scope, {
      content: 'Alice prefers tea',
      type: 'preference',
    });
    expect(await brainCli('get', id)).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/type\s+preference/);
    expect(out.join('\n')).toContain('Alice prefers tea');
    expect(await brainCli('get', 'mem_00000000000000000000000000')).toBe(EXIT.notFound);
    expect(err.join('\n')).toMatch(/not found: mem_00000000000000000000000000/);
    expect(await brainCli('get', 'nope')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/id: must be a memory id/);
  });

  it('lists a page at a time and says where the next page starts', async () => {
    for (let i = 0; i < 3; i++)
      await brain.services.memory.remember(brain.scope, { content: `paging item ${i}`, project: 'pager' });
    expect(await brainCli('list', '--project', 'pager', '--limit', '2')).toBe(EXIT.ok);
    const text = out.join('\n');
    expect(text).toContain('showing 1-2 of 3; next page: --offset 2');
    out = [];
    expect(await brainCli('list', '--project', 'pager', '--limit', '2', '--offset', '2', '--json')).toBe(
      EXIT.ok,
    );
    const page = JSON.parse(out.join('\n')) as { items: unknown[]; next_offset: number | null };
    expect(page.items).toHaveLength(1);
    expect(page.next_offset).toBeNull();
  });

  it('updates and forgets (soft, then hard by key); forgetting nothing exits 3', async () => {
    const { id } = await brain.services.memory.remember(brain.scope, {
      content: 'deploys happen on Fridays',
      key: 'deploy-day',
    });
    expect(
      await brainCli('update', id, '--content', 'deploys happen on Tuesdays', '--importance', '0.9'),
    ).toBe(EXIT.ok);
    expect((await brain.services.memory.get(brain.scope, { id })).content).toBe('deploys happen on Tuesdays');
    expect(await brainCli('forget', id)).toBe(EXIT.ok);
    expect(out.join('\n')).toContain(`forgot 1 memory: ${id}`);
    await expect(brain.services.memory.get(brain.scope, { id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await brainCli('forget', id)).toBe(EXIT.notFound);

    await brain.services.memory.remember(brain.scope, { content: 'temporary secret plan', key: 'plan' });
    out = [];
    expect(await brainCli('forget', '--key', 'plan', '--hard', '--json')).toBe(EXIT.ok);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ forgotten: 1, hard: true });
    expect(await brainCli('forget')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/give exactly one of id, key, filter or all/);
  });

  it('prints version and help, and exits 2 on an unknown command or option', async () => {
    expect(await brainCli('--version')).toBe(EXIT.ok);
    expect(out.join('\n')).toBe('9.9.9-test');
    out = [];
    expect(await brainCli('--help')).toBe(EXIT.ok);
    for (const command of ['remember', 'recall', 'forget', 'serve', 'mcp', 'migrate', 'config']) {
      expect(out.join('\n')).toContain(command);
    }
    expect(await brainCli('frobnicate')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/unknown command 'frobnicate'/);
    expect(await brainCli('recall', 'q', '--bogus')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/unknown option '--bogus'/);
    expect(await brainCli('serve', '--port', '99999')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/port: must be an integer from 0 to 65535/);
  });
});

describe('brain CLI global options', () => {
  it('passes --config and --env-file, before or after the command, to the runtime', async () => {
    const seen: unknown[] = [];
    const recording: CliRuntime = {
      ...runtime,
      mcp: async (global) => {
        seen.push(global);
      },
      checkConfig: (global) => {
        seen.push(global);
        return { text: '', ok: true };
      },
    };
    const io = { out: () => {}, err: (t: string) => err.push(t) };
    expect(await runCli(['--env-file', 'a.env', '-c', 'b.json', 'mcp'], recording, io)).toBe(EXIT.ok);
    expect(await runCli(['--env-file=c.env', 'config', 'check'], recording, io)).toBe(EXIT.ok);
    expect(await runCli(['mcp', '--env-file', 'd.env'], recording, io)).toBe(EXIT.ok);
    expect(seen).toEqual([
      { envFile: 'a.env', config: 'b.json' },
      { envFile: 'c.env' },
      { envFile: 'd.env' },
    ]);
  });
});

describe('brain CLI internal errors', () => {
  it('prints the cause of an internal error (its message, no stack) and exits 1', async () => {
    const broken: CliRuntime = {
      ...runtime,
      open: async () => {
        throw new Error('disk exploded at sector 7');
      },
    };
    const code = await runCli(['list'], broken, { out: (t) => out.push(t), err: (t) => err.push(t) });
    expect(code).toBe(EXIT.failed);
    expect(err.join('\n')).toMatch(/^error: internal error/);
    expect(err.join('\n')).toContain('cause: disk exploded at sector 7');
    expect(err.join('\n')).not.toMatch(/\bat .+:\d+:\d+/);
  });
});

describe('brain maintenance', () => {
  it('turns maintenance mode on (writes refused, reads served) and off, and refuses a bad state', async () => {
    expect(await brainCli('maintenance', 'on', '--reason', 'disk swap')).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/maintenance mode is on \(disk swap\)/);
    const before = await count();
    expect(await brainCli('remember', 'written during maintenance')).toBe(EXIT.failed);
    expect(err.join('\n')).toMatch(/maintenance mode \(disk swap\): remember is refused/);
    expect(await count()).toBe(before);
    expect(await brainCli('list')).toBe(EXIT.ok);
    expect(await brainCli('maintenance', '--json')).toBe(EXIT.ok);
    expect(JSON.parse(out.at(-1) ?? '{}')).toMatchObject({
      on: true,
      source: 'database',
      reason: 'disk swap',
    });
    expect(await brainCli('maintenance', 'off')).toBe(EXIT.ok);
    expect(await brainCli('remember', 'written after maintenance')).toBe(EXIT.ok);
    expect(await count()).toBe(before + 1);
    expect(await brainCli('maintenance', 'sideways')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/state: must be on or off/);
  });
});

describe('brain jobs and brain dead-letter', () => {
  it('lists the jobs, runs one now, and shows its run in the list and the history', async () => {
    expect(await brainCli('jobs', '--json')).toBe(EXIT.ok);
    const before = JSON.parse(out.join('\n')) as { name: string; cron: string; last: unknown }[];
    expect(before.map((j) => j.name)).toEqual([
      'backup',
      'vacuum',
      'checkpoint',
      'expire',
      'rebalance',
      'ttl',
      'sessions',
      'decay',
    ]);
    expect(before.find((j) => j.name === 'backup')?.cron).toBe(brain.config.backupCron);

    out = [];
    expect(await brainCli('jobs', 'run', 'backup')).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(
      /^backup: succeeded at .* \(manual, .+\)\n {2}brain_\d{8}_\d{6}\.(db|pgdump)\.gz/,
    );
    expect((await brain.storage.stores().jobs.recentRuns(5, 'backup')).map((r) => r.outcome)).toEqual([
      'succeeded',
    ]);

    out = [];
    expect(await brainCli('jobs')).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(
      /^backup {2}\[.+\] .*\n {2}next: \d{4}-\d\d-\d\d .*\n {2}last: succeeded at/m,
    );
    expect(out.join('\n')).toMatch(/^expire .*\n .*\n {2}last: never run/m);

    out = [];
    expect(await brainCli('jobs', 'history', 'backup', '--json')).toBe(EXIT.ok);
    expect(JSON.parse(out.join('\n'))).toMatchObject([
      { job: 'backup', trigger: 'manual', outcome: 'succeeded' },
    ]);
  });

  it('refuses an unknown job and a bad --limit, naming them, and records nothing', async () => {
    const runs = (await brain.storage.stores().jobs.recentRuns(100)).length;
    expect(await brainCli('jobs', 'run', 'defrag')).not.toBe(EXIT.ok);
    expect(err.join('\n')).toMatch(/defrag/);
    err = [];
    expect(await brainCli('jobs', 'history', '--limit', '0')).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/limit: must be a whole number from 1 to 1000, got "0"/);
    expect(await brainCli('dead-letter', 'list', '--limit', 'many')).toBe(EXIT.usage);
    expect((await brain.storage.stores().jobs.recentRuns(100)).length).toBe(runs);
  });

  it('lists a dead letter, retries it once (the job runs again), and refuses a second retry', async () => {
    const store = brain.storage.stores().jobs;
    await store.addDeadLetter({
      id: 'dl_cli_test',
      job: 'expire',
      attempts: 3,
      error: 'database is locked',
      failedAt: new Date().toISOString(),
    });
    expect(await brainCli('dead-letter', 'list')).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(
      /^dl_cli_test {2}expire {2}failed .* after 3 tries\n {2}database is locked/,
    );

    out = [];
    expect(await brainCli('dead-letter', 'retry', 'dl_cli_test', '--json')).toBe(EXIT.ok);
    expect(JSON.parse(out.join('\n'))).toMatchObject({
      job: 'expire',
      trigger: 'retry',
      outcome: 'succeeded',
    });
    expect(await store.deadLetter('dl_cli_test')).toMatchObject({ retryOutcome: 'succeeded' });

    out = [];
    expect(await brainCli('dead-letter', 'list')).toBe(EXIT.ok);
    expect(out.join('\n')).toBe('no dead letters');
    expect(await brainCli('dead-letter', 'list', '--all')).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/dl_cli_test .*retried .*: succeeded/);

    const expireRuns = (await store.recentRuns(100, 'expire')).length;
    expect(await brainCli('dead-letter', 'retry', 'dl_cli_test')).not.toBe(EXIT.ok);
    expect(err.join('\n')).toMatch(/dl_cli_test/);
    expect(await brainCli('dead-letter', 'retry', 'dl_nope')).not.toBe(EXIT.ok);
    expect((await store.recentRuns(100, 'expire')).length).toBe(expireRuns);
  });
});
