/**
 * Sandboxed execution as built, through the processes a user starts: `brain exec` (from a file and
 * from stdin, with files in and out, queued and cancelled), and `brain worker` processes sharing one
 * store, one of them killed -9 in the middle of a run.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from '../services/engines.js';
import { BRAIN_BIN, brainEnv, runBrain, type ServingBrain, startServe, tempHome } from './brain-process.js';

const homes: string[] = [];
const children: ChildProcess[] = [];
function home(): string {
  const dir = tempHome('brain-exec-e2e-');
  homes.push(dir);
  return dir;
}

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

interface Row {
  id: string;
  status: string;
  worker_id: string | null;
  attempts: number;
  result: string | null;
}

function rows(env: { BRAIN_HOME: string }): Row[] {
  const db = new Database(path.join(env.BRAIN_HOME, 'data', 'brain.db'), { readonly: true });
  try {
    return db
      .prepare('SELECT id, status, worker_id, attempts, result FROM executions ORDER BY id')
      .all() as Row[];
  } finally {
    db.close();
  }
}

async function until<T>(what: string, read: () => T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts `brain worker --id <id>` and resolves once it says it runs. */
function startWorker(
  env: Record<string, string>,
  id: string,
): Promise<{ child: ChildProcess; logs: () => string }> {
  const child = spawn(process.execPath, [BRAIN_BIN, 'worker', '--id', id], {
    env: brainEnv(env),
    cwd: env.BRAIN_HOME,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let logs = '';
  child.stdout?.on('data', (c) => {
    logs += c;
  });
  child.stderr?.on('data', (c) => {
    logs += c;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`brain worker did not start:\n${logs}`)), 20_000);
    const check = setInterval(() => {
      if (logs.includes('brain worker is running')) {
        clearInterval(check);
        clearTimeout(timer);
        resolve({ child, logs: () => logs });
      }
    }, 50);
    child.on('exit', (code) => {
      clearInterval(check);
      clearTimeout(timer);
      reject(new Error(`brain worker exited ${code}:\n${logs}`));
    });
  });
}

describe('brain exec', () => {
  it('runs a file and stdin, prints the output and the value, and exits with the code', async () => {
    const env = { BRAIN_HOME: home() };
    const file = path.join(env.BRAIN_HOME, 'job.py');
    fs.writeFileSync(
      file,
      'import sys\nprint("hello from the sandbox")\nprint("warn", file=sys.stderr)\n6 * 7\n',
    );
    const ran = await runBrain(['exec', file], env);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe('hello from the sandbox\n42\n');
    expect(ran.stderr).toContain('warn');

    const piped = await runBrain(['exec', '-', '--json'], env, undefined, 'raise SystemExit(3)\n');
    expect(piped.code).toBe(3);
    expect(JSON.parse(piped.stdout)).toMatchObject({ status: 'failed', exit_code: 3 });

    const slow = await runBrain(
      ['exec', '-', '--timeout', '300'],
      env,
      undefined,
      'import time\ntime.sleep(30)\n',
    );
    expect(slow.code).toBe(124);
    expect(slow.stderr).toMatch(/timed_out: killed at its wall-clock limit of 300 ms/);
  });

  it('passes files in with --input and writes the files the run left to --out', async () => {
    const env = { BRAIN_HOME: home() };
    const input = path.join(env.BRAIN_HOME, 'numbers.csv');
    fs.writeFileSync(input, '1\n2\n3\n');
    const out = path.join(env.BRAIN_HOME, 'out');
    const code =
      'total = sum(int(x) for x in open("data.csv"))\nopen("total.txt", "w").write(str(total))\ntotal\n';
    const ran = await runBrain(
      ['exec', '-', '--input', `data.csv=${input}`, '--out', out],
      env,
      undefined,
      code,
    );
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe('6');
    expect(fs.readFileSync(path.join(out, 'total.txt'), 'utf8')).toBe('6');

    const bad = await runBrain(['exec', '-', '--input', 'x=/nonexistent/file'], env, undefined, '1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/input: cannot read \/nonexistent\/file/);
  });

  it('queues with --no-wait; the run is shown, and cancelled before any worker takes it', async () => {
    const env = { BRAIN_HOME: home() };
    const queued = await runBrain(['exec', '-', '--no-wait'], env, undefined, 'print(1)\n');
    expect(queued.code, queued.stderr).toBe(0);
    const id = /^(exe_[0-9a-z]{26}) queued$/.exec(queued.stdout.trim())?.[1] as string;
    expect(id).toBeDefined();
    const shown = await runBrain(['executions', 'show', id, '--json'], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id, status: 'queued' });
    const cancelled = await runBrain(['executions', 'cancel', id], env);
    expect(cancelled.stdout.trim()).toBe(`${id} cancelled`);
    const listed = await runBrain(['executions', 'list', '--status', 'cancelled', '--json'], env);
    expect(
      (JSON.parse(listed.stdout) as { executions: { id: string }[] }).executions.map((e) => e.id),
    ).toEqual([id]);
    const bad = await runBrain(['executions', 'show', 'exe_nope'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/id: must be an execution id/);
  });
});

describe('brain worker', () => {
  it('runs what others queued; a worker killed -9 mid-run leaves it re-queued and run by another', async () => {
    const env = { BRAIN_HOME: home(), BRAIN_EXECUTION_LEASE_MS: '1000' };
    // Queued by a one-off command; no process runs workers yet.
    const long = await runBrain(
      ['exec', '-', '--no-wait'],
      env,
      undefined,
      'import time\ntime.sleep(3)\n"survived"\n',
    );
    const id = /^(exe_[0-9a-z]{26}) queued$/.exec(long.stdout.trim())?.[1] as string;
    const first = await startWorker(env, '1');
    const taken = await until('the run to start on worker 1', () =>
      rows(env).find((r) => r.id === id && r.status === 'running' && r.worker_id?.endsWith('worker-1:0')),
    );
    expect(taken.attempts).toBe(1);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    // Its sandbox went with it (bubblewrap dies with its parent): no process runs the code now.
    await until('the sandbox to be gone', () => {
      const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
      return ps.includes(`brain-exec-${first.child.pid}-`) ? undefined : true;
    });
    const second = await startWorker(env, '2');
    const done = await until('the run to finish on worker 2', () =>
      rows(env).find((r) => r.id === id && r.status === 'succeeded'),
    ).catch((error) => {
      throw new Error(`${error.message}: ${JSON.stringify(rows(env))}\n${second.logs()}`);
    });
    expect(done).toMatchObject({ attempts: 2, result: "'survived'" });
    expect(done.worker_id).toMatch(/worker-2:0$/);
    // The killed worker's working directory was swept by the next worker's start.
    for (const root of ['/tmp', path.join(env.BRAIN_HOME, 'execution')])
      if (fs.existsSync(root))
        expect(fs.readdirSync(root).filter((n) => n.startsWith(`brain-exec-${first.child.pid}-`))).toEqual(
          [],
        );

    // It also runs what is queued while it is up, and leaves the registry on SIGTERM.
    const more = await runBrain(['exec', '-', '--no-wait'], env, undefined, '"after"\n');
    const next = /^(exe_[0-9a-z]{26})/.exec(more.stdout.trim())?.[1] as string;
    await until('the second run', () => rows(env).find((r) => r.id === next && r.status === 'succeeded'));
    second.child.kill('SIGTERM');
    const code = await new Promise((resolve) => second.child.once('exit', resolve));
    expect(code).toBe(0);
    const db = new Database(path.join(env.BRAIN_HOME, 'data', 'brain.db'), { readonly: true });
    const left = db.prepare("SELECT id FROM execution_workers WHERE id LIKE '%worker-2%'").all();
    db.close();
    expect(left).toEqual([]);
    expect(rows(env).filter((r) => r.status === 'running')).toEqual([]);
  });
});

describe.skipIf(!postgresBaseUrl())(
  `workers on other machines, one PostgreSQL${postgresBaseUrl() ? '' : ` (skipped: ${postgresSkipReason()})`}`,
  () => {
    it('a server with no workers of its own answers through brain worker processes elsewhere, each run once', async () => {
      const url = newPostgresDatabase();
      // Each process its own BRAIN_HOME, as on separate machines: only the database is shared.
      const server: ServingBrain = await startServe({
        BRAIN_HOME: home(),
        BRAIN_DATABASE_URL: url,
        BRAIN_EMBEDDER: 'none',
        BRAIN_WORKER_MIN: '0',
        BRAIN_WORKER_MAX: '0',
      });
      const workers = [];
      try {
        for (const id of ['a', 'b'])
          workers.push(
            await startWorker({ BRAIN_HOME: home(), BRAIN_DATABASE_URL: url, BRAIN_EMBEDDER: 'none' }, id),
          );
        const post = async (body: object) => {
          const res = await fetch(`${server.url}/v1/executions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
          return {
            status: res.status,
            body: (await res.json()) as { id: string; status: string; result: string; worker_id: string },
          };
        };
        const one = await post({ code: 'import socket\nsocket.gethostname()' });
        expect(one.status).toBe(200);
        expect(one.body.status).toBe('succeeded');
        expect(one.body.worker_id).toMatch(/:worker-[ab]:0$/);
        const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => post({ code: `${i} + 100` })));
        expect(runs.map((r) => r.body.result)).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 100)));
        // Both machines took work.
        expect(new Set(runs.map((r) => r.body.worker_id.replace(/:0$/, ''))).size).toBe(2);
        const health = (await (await fetch(`${server.url}/health`)).json()) as {
          checks: { execution: { status: string } };
          workers: { id: string }[];
        };
        expect(health.checks.execution.status).toBe('ok');
        expect(health.workers.map((w) => w.id.replace(/^.*:(worker-[ab]):0$/, '$1')).sort()).toEqual([
          'worker-a',
          'worker-b',
        ]);
      } finally {
        for (const w of workers) w.child.kill('SIGTERM');
        await server.stop();
      }
    });
  },
);
