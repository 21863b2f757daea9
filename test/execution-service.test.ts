/**
 * The execution queue end to end through the service a surface calls, on the engine BRAIN_TEST_ENGINE
 * names: a real Brain, its worker pool, the bubblewrap sandbox. Hostile code is contained here with the
 * server's own secrets, database and BRAIN_HOME in reach of a careless sandbox; after each, the Brain
 * still answers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Brain } from '../src/app/build-brain.js';
import { newId } from '../src/core/ids.js';
import type { RequestScope } from '../src/core/scope.js';
import type { ExecutionView } from '../src/modules/execution/execution-schemas.js';
import { openTestBrain, type TestBrain } from './test-brain.js';

const SECRET = 'sk-test-secret-0123456789abcdef0123456789abcdef';
const b64 = (s: string) => Buffer.from(s).toString('base64');

let t: TestBrain;
let brain: Brain;
let scope: RequestScope;

beforeAll(async () => {
  t = await openTestBrain('brain-exec-', {
    env: {
      BRAIN_WORKER_MIN: '2',
      BRAIN_WORKER_MAX: '2',
      BRAIN_MAX_EXECUTION_TIME_MS: '20000',
      BRAIN_MAX_MEMORY_MB: '256',
      BRAIN_MAX_OUTPUT_SIZE_MB: '1',
      BRAIN_EXECUTION_LEASE_MS: '1500',
      BRAIN_JWT_SECRET: SECRET,
    },
  });
  brain = t.brain;
  // The secret is in the server's environment too, as it is when set in the shell or systemd.
  process.env.BRAIN_TEST_SERVER_SECRET = SECRET;
  scope = { ...brain.scope, principal: 'key:test' };
  expect(brain.startExecutionWorkers()).toBe(true);
}, 60_000);

afterAll(async () => {
  delete process.env.BRAIN_TEST_SERVER_SECRET;
  await t?.close();
});

const run = (code: string, extra: Record<string, unknown> = {}) =>
  brain.services.executions.execute(scope, { code, ...extra });

async function healthy(): Promise<void> {
  const again = await run('1 + 1');
  expect(again).toMatchObject({ status: 'succeeded', result: '2' });
}

describe('execute', () => {
  it('returns stdout, stderr, the last expression, exit code, times and the id', async () => {
    const r = await run('import sys\nprint("out")\nprint("err", file=sys.stderr)\nx = 6\nx * 7');
    expect(r).toMatchObject({
      status: 'succeeded',
      exit_code: 0,
      stdout: 'out\n',
      stderr: 'err\n',
      result: '42',
      stdout_truncated: false,
      error: null,
      attempts: 1,
    });
    expect(r.id).toMatch(/^exe_/);
    expect(r.wall_ms).toBeGreaterThan(0);
    expect(r.cpu_time_ms).toEqual(expect.any(Number));
    expect(r.worker_id).toEqual(expect.any(String));
    expect(r.finished_at).not.toBeNull();
    // The same row is what a later read answers.
    expect(await brain.services.executions.get(scope, { id: r.id })).toEqual(r);
  });

  it('reports a failing run with its exit code and traceback', async () => {
    const r = await run('raise SystemExit(3)');
    expect(r).toMatchObject({ status: 'failed', exit_code: 3 });
    const e = await run('1 / 0');
    expect(e.status).toBe('failed');
    expect(e.exit_code).toBe(1);
    expect(e.stderr).toMatch(/ZeroDivisionError/);
  });

  it('passes input files in and returns the files the run wrote', async () => {
    const r = await run('data = open("in.txt").read()\nopen("out.txt", "w").write(data.upper())\nlen(data)', {
      files: [{ name: 'in.txt', content_base64: b64('hello') }],
    });
    expect(r).toMatchObject({ status: 'succeeded', result: '5' });
    const out = r.output_files.find((f) => f.name === 'out.txt');
    expect(Buffer.from(out?.content_base64 ?? '', 'base64').toString()).toBe('HELLO');
    // The input file is in the directory too, so it comes back; main.py and the runner do not.
    expect(r.output_files.map((f) => f.name).sort()).toEqual(['in.txt', 'out.txt']);
  });

  it('queues with wait:false; the run is then polled to its end', async () => {
    const q = await run('import time\ntime.sleep(0.3)\n"done"', { wait: false });
    expect(['queued', 'running']).toContain(q.status);
    let r: ExecutionView = q;
    for (let i = 0; i < 100 && (r.status === 'queued' || r.status === 'running'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r = await brain.services.executions.get(scope, { id: q.id });
    }
    expect(r).toMatchObject({ status: 'succeeded', result: "'done'" });
  });

  it('cancels a running run at once and a queued one before it starts', async () => {
    const q = await run('import time\ntime.sleep(30)', { wait: false });
    for (let i = 0; i < 50; i++) {
      if ((await brain.services.executions.get(scope, { id: q.id })).status === 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const started = Date.now();
    // Answered cancelled at once when this process already runs it; a run claimed but not yet started
    // here (a slow machine) is answered running and ends cancelled within moments.
    let c = await brain.services.executions.cancel(scope, { id: q.id });
    while (c.status === 'running' && Date.now() - started < 5000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      c = await brain.services.executions.get(scope, { id: q.id });
    }
    expect(c.status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(5000);
    await healthy();
  });

  it('times out a sleeper past its timeout and kills it', async () => {
    const r = await run('import time\ntime.sleep(60)', { timeout_ms: 500 });
    expect(r.status).toBe('timed_out');
    expect(r.error).toMatch(/wall-clock limit of 500 ms/);
    expect(r.wall_ms).toBeLessThan(5000);
    await healthy();
  });

  it('refuses bad input naming the field and the limit, and queues nothing', async () => {
    const before = await brain.storage.stores().executions.counts();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ code: '' }, /code: must not be empty/],
      [{ code: 'x'.repeat(256 * 1024 + 1) }, /code: must be at most 262144 bytes/],
      [{ code: '1', timeout_ms: 10 }, /timeout_ms: must be at least 100/],
      [
        { code: '1', timeout_ms: 20_001 },
        /timeout_ms: must be at most 20000 \(BRAIN_MAX_EXECUTION_TIME_MS\)/,
      ],
      [
        { code: '1', files: [{ name: '../x', content_base64: '' }] },
        /files\.0\.name: must be a plain file name/,
      ],
      [
        { code: '1', files: [{ name: 'main.py', content_base64: '' }] },
        /files\.0\.name: must not be main\.py/,
      ],
      [
        { code: '1', files: [{ name: 'a', content_base64: '@@' }] },
        /files\.0\.content_base64: must be base64/,
      ],
      [
        { code: '1', files: [{ name: 'a', content_base64: b64('x'.repeat(600 * 1024)) }] },
        /files: must hold at most 524288 bytes/,
      ],
      [{ code: '1', wait: 'yes' }, /wait: must be true or false/],
      [{ code: '1', shell: true }, /unknown field\(s\): shell/],
    ];
    for (const [input, message] of cases)
      await expect(brain.services.executions.execute(scope, input)).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        message: expect.stringMatching(message),
      });
    expect(await brain.storage.stores().executions.counts()).toEqual(before);
  });

  it('keeps tenants apart: another tenant neither reads nor cancels a run', async () => {
    const r = await run('1', { wait: false });
    const other = { ...scope, tenantId: 'other-tenant' };
    await expect(brain.services.executions.get(other, { id: r.id })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(brain.services.executions.cancel(other, { id: r.id })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect((await brain.services.executions.list(other, {})).map((e) => e.id)).not.toContain(r.id);
    expect((await brain.services.executions.list(scope, {})).map((e) => e.id)).toContain(r.id);
  });

  it('audits each run: principal, code size, exit code and CPU time', async () => {
    const r = await run('print(1)');
    await brain.audit.flush();
    const events = await brain.storage
      .stores()
      .audit.list({ tenantId: scope.tenantId, action: 'execution.', limit: 200 });
    const ran = events.find((e) => e.action === 'execution.run' && e.target === r.id);
    expect(ran).toMatchObject({ principal: 'key:test', outcome: 'ok' });
    expect(ran?.details).toMatchObject({ code_bytes: 8, exit_code: 0, cpu_time_ms: expect.any(Number) });
    const submitted = events.find((e) => e.action === 'execution.submit' && e.target === r.id);
    expect(submitted).toMatchObject({ principal: 'key:test', outcome: 'ok' });
    expect(submitted?.details).toMatchObject({ code_bytes: 8 });
  });
});

describe('hostile code through the server', () => {
  it('finds none of the server secrets in its environment', async () => {
    const r = await run('import os\nsorted(os.environ.items())');
    expect(r.status).toBe('succeeded');
    expect(r.result).not.toContain(SECRET);
    expect(r.result).not.toMatch(/BRAIN_/);
    await healthy();
  });

  it('cannot read the database file, BRAIN_HOME or /etc/shadow', async () => {
    const targets = [brain.config.dbPath, path.join(t.home, 'test-database-url'), t.home, '/etc/shadow'];
    const code = `import os, json
seen = {}
for p in ${JSON.stringify(targets)}:
    try:
        if os.path.isdir(p):
            seen[p] = os.listdir(p)
        else:
            seen[p] = len(open(p, "rb").read())
    except Exception as e:
        seen[p] = type(e).__name__
print(json.dumps(seen))`;
    const r = await run(code);
    expect(r.status).toBe('succeeded');
    const seen = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const target of targets) expect(seen[target], target).toMatch(/Error$/);
    await healthy();
  });

  it("cannot read another execution's files, even one running beside it", async () => {
    const holder = await run(
      'import time, os\nopen("private.txt", "w").write("mine")\ntime.sleep(1)\nos.getcwd()',
      {
        wait: false,
        files: [{ name: 'given.txt', content_base64: b64('secret input') }],
      },
    );
    for (let i = 0; i < 50; i++) {
      if ((await brain.services.executions.get(scope, { id: holder.id })).status === 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const root = brain.config.executionPath;
    const snoop = await run(`import os, glob
found = []
for pattern in ["/work/../*/*.txt", "/tmp/brain-exec-*/*", ${JSON.stringify(`${root}/*/*`)}, "/proc/*/cwd/*.txt"]:
    found += glob.glob(pattern)
found`);
    expect(snoop.status).toBe('succeeded');
    expect(snoop.result).toBe('[]');
    let done = await brain.services.executions.get(scope, { id: holder.id });
    for (let i = 0; i < 100 && done.status === 'running'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      done = await brain.services.executions.get(scope, { id: holder.id });
    }
    expect(done).toMatchObject({ status: 'succeeded', result: "'/work'" });
    // Its directory is gone once it ended.
    if (fs.existsSync(root)) expect(fs.readdirSync(root)).not.toContain('private.txt');
    await healthy();
  });

  it('cuts huge output at the limit and flags it', async () => {
    const r = await run('import sys\nsys.stdout.write("x" * (3 * 1024 * 1024))');
    expect(r.status).toBe('succeeded');
    expect(r.stdout.length).toBe(1024 * 1024);
    expect(r.stdout_truncated).toBe(true);
    await healthy();
  });
});

describe('the queue', () => {
  it('re-queues the run of a worker that died (its lease ran out) and finishes it on a live one', async () => {
    const store = brain.storage.stores().executions;
    const now = new Date();
    const dead = newId('exe', now.getTime() - 60_000);
    // This process's workers stop meanwhile, so that none of them claims the run before the dead one.
    await brain.executions.stop();
    // A worker claims a run and dies at once: it never sends a heartbeat.
    await store.enqueue({
      id: dead,
      tenant_id: scope.tenantId,
      principal: 'key:test',
      code: '"recovered"',
      files: [],
      timeout_ms: 5000,
      created_at: new Date(now.getTime() - 60_000).toISOString(),
    });
    const claimed = await store.claim(
      'dead-worker',
      now.toISOString(),
      new Date(now.getTime() + 1000).toISOString(),
    );
    expect(claimed?.id).toBe(dead);
    expect(brain.startExecutionWorkers()).toBe(true);
    let r = await brain.services.executions.get(scope, { id: dead });
    for (let i = 0; i < 100 && r.status !== 'succeeded'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r = await brain.services.executions.get(scope, { id: r.id });
    }
    expect(r).toMatchObject({ status: 'succeeded', result: "'recovered'", attempts: 2 });
    expect(r.worker_id).not.toBe('dead-worker');
  });

  it('runs 20 queued executions, each once with its own result, and leaves none running', async () => {
    const queued = await Promise.all(
      Array.from({ length: 20 }, (_, i) => run(`${i} * ${i}`, { wait: false })),
    );
    const results = await Promise.all(
      queued.map(async (q) => {
        let r = q;
        for (let i = 0; i < 300 && (r.status === 'queued' || r.status === 'running'); i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          r = await brain.services.executions.get(scope, { id: q.id });
        }
        return r;
      }),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill('succeeded'));
    expect(results.map((r) => r.result)).toEqual(queued.map((_, i) => String(i * i)));
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    const counts = await brain.storage.stores().executions.counts();
    expect(counts.running).toBe(0);
    expect(counts.queued).toBe(0);
  });

  it('the ttl job deletes finished executions past BRAIN_EXECUTION_RETENTION_DAYS, and only those', async () => {
    const store = brain.storage.stores().executions;
    const old = new Date(Date.now() - 31 * 86_400_000);
    const id = newId('exe', old.getTime());
    // No worker of this process may claim the run before the one that is gone.
    await brain.executions.stop();
    await store.enqueue({
      id,
      tenant_id: scope.tenantId,
      principal: 'key:test',
      code: '1',
      files: [],
      timeout_ms: 1000,
      created_at: new Date(old.getTime() - 120_000).toISOString(),
    });
    // Claimed and finished a month ago by a worker that is gone.
    const claimed = await store.claim('gone', old.toISOString(), new Date(Date.now() + 60_000).toISOString());
    expect(claimed?.id).toBe(id);
    await store.finish(id, 'gone', {
      status: 'succeeded',
      exit_code: 0,
      signal: null,
      cpu_time_ms: 1,
      wall_ms: 40,
      stdout: '',
      stderr: '',
      stdout_truncated: false,
      stderr_truncated: false,
      result: '1',
      output_files: [],
      error: null,
      finished_at: old.toISOString(),
    });
    expect(brain.startExecutionWorkers()).toBe(true);
    const recent = await run('"recent"');
    const job = await brain.scheduler.runNow('ttl');
    expect(job).toMatchObject({ outcome: 'succeeded' });
    expect(job.message).toMatch(/1 finished executions past retention deleted/);
    await expect(brain.services.executions.get(scope, { id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await brain.services.executions.get(scope, { id: recent.id })).result).toBe("'recent'");
  });

  it('registers its workers, seen by /health', async () => {
    const workers = await brain.storage.stores().executions.workers();
    expect(workers.length).toBe(2);
    expect(
      brain.executions
        .status()
        .map((w) => w.id)
        .sort(),
    ).toEqual(workers.map((w) => w.id).sort());
  });
});
