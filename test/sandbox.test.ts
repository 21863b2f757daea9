/**
 * The Python sandbox against hostile code (issue 13): each attempt is contained and the next run is
 * unaffected. Real bubblewrap, prlimit and /usr/bin/python3; skipped, loudly, where they cannot run.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSandboxed, sandboxProblem } from '../src/modules/execution/sandbox.js';

const problem = sandboxProblem();
if (problem) console.warn(`\n!! SKIPPING the sandbox tests: ${problem}\n`);

const fast = { wallMs: 20_000, cpuSeconds: 10 };

describe.skipIf(problem !== null)('the Python sandbox', () => {
  let server: net.Server;
  let port = 0;
  let secretDir = '';

  beforeAll(async () => {
    server = net.createServer((s) => s.end('hello from the host\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
    secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-secret-'));
    fs.writeFileSync(path.join(secretDir, 'brain.db'), 'the database file');
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(secretDir, { recursive: true, force: true });
  });

  it('runs print(1), returns stdout, the last expression, exit code and times', async () => {
    const run = await runSandboxed('print(1)\nx = 6 * 7\nx', { limits: fast });
    expect(run).toMatchObject({ stdout: '1\n', result: '42', exitCode: 0, timedOut: false });
    expect(run.cpuMs).toBeGreaterThanOrEqual(0);
    expect(run.wallMs).toBeGreaterThan(0);
  });

  it('reports an exception on stderr with exit 1, and no result', async () => {
    const run = await runSandboxed('1 / 0', { limits: fast });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/ZeroDivisionError/);
    expect(run.result).toBeNull();
  });

  it('cannot reach a port on 127.0.0.1 the test listens on, nor look up a name', async () => {
    const code = `
import socket
out = []
try:
    socket.create_connection(("127.0.0.1", ${port}), timeout=3).recv(100)
    out.append("connected")
except OSError as e:
    out.append("blocked")
try:
    socket.getaddrinfo("brain-sandbox-test.invalid", 80)
    out.append("resolved")
except OSError:
    out.append("no lookup")
out`;
    const run = await runSandboxed(code, { limits: fast });
    expect(run.result).toBe("['blocked', 'no lookup']");
  });

  it('cannot read host files: /etc/shadow, the database, BRAIN_HOME, other processes', async () => {
    const code = `
import os
seen = {}
for p in ["/etc/shadow", "/etc/passwd", ${JSON.stringify(path.join(secretDir, 'brain.db'))}, "/root"]:
    try:
        open(p).read() if not os.path.isdir(p) else os.listdir(p)
        seen[p] = "read"
    except OSError:
        seen[p] = "denied"
seen["pids"] = sorted(int(d) for d in os.listdir("/proc") if d.isdigit())
seen`;
    const run = await runSandboxed(code, { limits: fast });
    const seen = run.result ?? '';
    expect(seen).not.toContain("'read'");
    // Only the sandbox's own processes: its init and the code.
    expect(seen).toMatch(/'pids': \[1, 2\]/);
  });

  it('cannot write outside its directory, and another run does not see its files', async () => {
    const code = `
import os
res = []
for p in ["/usr/evil", "/tmp/../usr/x", "/evil"]:
    try:
        open(p, "w").write("x"); res.append("wrote " + p)
    except OSError:
        res.append("denied")
open("note.txt", "w").write("mine")
res`;
    const first = await runSandboxed(code, { limits: fast });
    expect(first.result).toBe("['denied', 'denied', 'denied']");
    expect(first.files.map((f) => [f.name, f.content.toString()])).toEqual([['note.txt', 'mine']]);
    const second = await runSandboxed('import os\nsorted(os.listdir("."))', { limits: fast });
    expect(second.result).toBe("['.runner.py', 'main.py']");
  });

  it('sees none of the server environment', async () => {
    process.env.BRAIN_TEST_SECRET = 'hunter2';
    try {
      const run = await runSandboxed('import os\nsorted(os.environ)', { limits: fast });
      expect(run.result).not.toContain('BRAIN_TEST_SECRET');
      expect(run.result).toBe("['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONDONTWRITEBYTECODE']");
    } finally {
      delete process.env.BRAIN_TEST_SECRET;
    }
  });

  it('contains a fork bomb within the process limit, and the next run is fine', async () => {
    const code = `
import os
n = 0
try:
    while True:
        if os.fork() == 0:
            import time; time.sleep(30); os._exit(0)
        n += 1
except OSError:
    pass
n`;
    const run = await runSandboxed(code, { limits: { ...fast, wallMs: 10_000, processes: 32 } });
    expect(Number(run.result)).toBeLessThan(32);
    const next = await runSandboxed('1 + 1', { limits: fast });
    expect(next.result).toBe('2');
  });

  it('stops a memory bomb at the address-space limit', async () => {
    const run = await runSandboxed('x = bytearray(600 * 1024 * 1024)\nlen(x)', {
      limits: { ...fast, memoryMb: 256 },
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toMatch(/MemoryError/);
  });

  it('kills an infinite loop at the wall-clock timeout, and a sleeper with its child', async () => {
    const loop = await runSandboxed('while True: pass', { limits: { ...fast, wallMs: 1500 } });
    expect(loop.timedOut).toBe(true);
    expect(loop.signal).toBe('SIGKILL');
    const sleeper = await runSandboxed(
      'import subprocess, time\nsubprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(60)"])\ntime.sleep(60)',
      { limits: { ...fast, wallMs: 1500 } },
    );
    expect(sleeper.timedOut).toBe(true);
    // Nothing of it is left running on the host.
    const left = fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('time.sleep(60)');
        } catch {
          return false;
        }
      });
    expect(left).toEqual([]);
  });

  it('a child that outlives its parent dies with the run', async () => {
    const run = await runSandboxed(
      'import os, time\nif os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)\nprint("parent done")',
      { limits: fast },
    );
    expect(run.stdout).toBe('parent done\n');
    expect(run.timedOut).toBe(false);
  });

  it('cuts huge output at the limit and flags it', async () => {
    const run = await runSandboxed('import sys\nfor _ in range(200000): sys.stdout.write("x" * 100)', {
      limits: { ...fast, outputBytes: 64 * 1024 },
    });
    expect(run.stdout.length).toBe(64 * 1024);
    expect(run.stdoutTruncated).toBe(true);
  });
});
