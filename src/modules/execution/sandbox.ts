import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * One Python run in a sandbox (issue 13, first part): bubblewrap around /usr/bin/python3 with new
 * network, PID, IPC, UTS, user and mount namespaces, a read-only /usr and nothing else of the host, a
 * fresh private working directory, a minimal environment, rlimits (prlimit) and a wall-clock timeout
 * that kills the whole process tree. The run's host uid is its own (one per concurrent run), so the
 * process limit counts only that run's processes.
 */

export const PYTHON = '/usr/bin/python3';
const BWRAP = '/usr/bin/bwrap';
const PRLIMIT = '/usr/bin/prlimit';
const SETPRIV = '/usr/bin/setpriv';

export interface SandboxLimits {
  /** Address space of each process, MiB (BRAIN_MAX_MEMORY_MB). */
  memoryMb: number;
  /** CPU seconds of each process (RLIMIT_CPU). */
  cpuSeconds: number;
  /** Wall-clock time of the whole run, ms (BRAIN_MAX_EXECUTION_TIME_MS): then every process is killed. */
  wallMs: number;
  /** Bytes kept of stdout and of stderr each; beyond, the stream is cut and flagged. */
  outputBytes: number;
  /** Largest file a run may write, bytes (RLIMIT_FSIZE; BRAIN_MAX_OUTPUT_SIZE_MB). */
  fileBytes: number;
  /** Processes (threads included) the run's uid may have at once (RLIMIT_NPROC). */
  processes: number;
  /** Open files of each process (RLIMIT_NOFILE). */
  openFiles: number;
}

export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = {
  memoryMb: 512,
  cpuSeconds: 60,
  wallMs: 300_000,
  outputBytes: 1024 * 1024,
  fileBytes: 10 * 1024 * 1024,
  processes: 64,
  openFiles: 256,
};

/** A file given to a run (in its working directory) or returned from it. */
export interface SandboxFile {
  name: string;
  content: Buffer;
}

export interface SandboxRun {
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** repr() of the last expression's value when the code ends with one (and it is not None). */
  result: string | null;
  exitCode: number | null;
  /** The signal that ended the run (SIGKILL at the timeout, SIGXCPU past the CPU limit), if one did. */
  signal: string | null;
  timedOut: boolean;
  wallMs: number;
  /** CPU time of the code and its children as Python measured it; null when it was killed first. */
  cpuMs: number | null;
  /** Files the run left in its working directory (within the limits of returnedFiles). */
  files: SandboxFile[];
}

export interface SandboxOptions {
  limits?: Partial<SandboxLimits>;
  files?: SandboxFile[];
  /** Host uid (and gid) of the run; distinct per concurrent run. Ignored unless root. */
  uid?: number;
  /** `none`: no namespaces, only the rlimits and the timeout (BRAIN_SANDBOX=none, never in production). */
  mode?: 'bwrap' | 'none';
  /** At most this many files, and bytes in all, come back. */
  returnedFiles?: { count: number; bytes: number };
  /** Where the run's private working directory is made (and removed after); default the temp dir. */
  workRoot?: string;
  signal?: AbortSignal;
}

/** Why runs cannot be sandboxed here (what to install), or null when they can. */
export function sandboxProblem(mode: 'bwrap' | 'none' = 'bwrap'): string | null {
  const missing = [PYTHON, PRLIMIT, ...(mode === 'bwrap' ? [BWRAP] : [])].filter((f) => !fs.existsSync(f));
  if (missing.length > 0)
    return `${missing.join(', ')} missing: install the Debian packages ${[
      missing.includes(PYTHON) ? 'python3' : null,
      missing.includes(BWRAP) ? 'bubblewrap' : null,
      missing.includes(PRLIMIT) ? 'util-linux' : null,
    ]
      .filter(Boolean)
      .join(' and ')}`;
  if (mode === 'bwrap') {
    const probe = spawnSync(BWRAP, [...namespaceArgs('/'), PYTHON, '-I', '-c', 'pass'], { timeout: 10_000 });
    if (probe.status !== 0)
      return `bubblewrap cannot create namespaces here (${probe.stderr.toString().trim() || `exit ${probe.status}`}); user namespaces must be enabled (sysctl kernel.unprivileged_userns_clone=1)`;
  }
  return null;
}

/** The runner: the code's last expression, if any, is evaluated and its repr() reported on fd 3. */
const RUNNER = `
import ast, json, os, resource, sys
def _report(value):
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rc = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime) * 1000
    try:
        os.write(3, json.dumps({"result": value, "cpu_ms": cpu}).encode())
    except OSError:
        pass
_value = None
try:
    with open("main.py", encoding="utf-8") as _f:
        _tree = ast.parse(_f.read(), "<execution>")
    _last = None
    if _tree.body and isinstance(_tree.body[-1], ast.Expr):
        _last = ast.Expression(_tree.body.pop().value)
    _globals = {"__name__": "__main__"}
    exec(compile(_tree, "<execution>", "exec"), _globals)
    if _last is not None:
        _v = eval(compile(_last, "<execution>", "eval"), _globals)
        if _v is not None:
            _value = repr(_v)[:65536]
finally:
    _report(_value)
`;

/** The namespaces and the view of the host a run gets: /usr read-only, a private /tmp, its directory. */
function namespaceArgs(workdir: string): string[] {
  const args = [
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--ro-bind',
    '/usr',
    '/usr',
    '--symlink',
    'usr/bin',
    '/bin',
    '--symlink',
    'usr/lib',
    '/lib',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--clearenv',
    '--setenv',
    'PATH',
    '/usr/bin',
    '--setenv',
    'HOME',
    '/work',
    '--setenv',
    'LANG',
    'C.UTF-8',
    '--setenv',
    'PYTHONDONTWRITEBYTECODE',
    '1',
  ];
  if (fs.existsSync('/usr/lib64')) args.push('--symlink', 'usr/lib64', '/lib64');
  if (workdir !== '/') args.push('--bind', workdir, '/work', '--chdir', '/work');
  // The sandbox's own root (a tmpfs bwrap made) read-only too: the run writes its directory and /tmp only.
  args.push('--remount-ro', '/');
  return args;
}

function limitArgs(l: SandboxLimits): string[] {
  return [
    `--as=${l.memoryMb * 1024 * 1024}`,
    `--cpu=${l.cpuSeconds}`,
    `--fsize=${l.fileBytes}`,
    `--nproc=${l.processes}`,
    `--nofile=${l.openFiles}`,
    '--core=0',
  ];
}

/** Collects a stream up to `max` bytes; the rest is read and dropped (a writer never blocks on it). */
function collect(
  stream: NodeJS.ReadableStream,
  max: number,
): { text: () => string; truncated: () => boolean } {
  const chunks: Buffer[] = [];
  let kept = 0;
  let cut = false;
  stream.on('data', (chunk: Buffer) => {
    if (kept >= max) {
      cut = true;
      return;
    }
    const take = chunk.subarray(0, max - kept);
    if (take.length < chunk.length) cut = true;
    chunks.push(take);
    kept += take.length;
  });
  return { text: () => Buffer.concat(chunks).toString('utf8'), truncated: () => cut };
}

/** Runs `code` (Python 3) in the sandbox and reports what it did; never throws for what the code does. */
export async function runSandboxed(code: string, options: SandboxOptions = {}): Promise<SandboxRun> {
  const limits = { ...DEFAULT_SANDBOX_LIMITS, ...options.limits };
  const mode = options.mode ?? 'bwrap';
  // The pid in the name lets a later process sweep what a killed one left (sweepStaleWorkdirs).
  const workdir = fs.mkdtempSync(path.join(options.workRoot ?? os.tmpdir(), `brain-exec-${process.pid}-`));
  const asRoot = process.getuid?.() === 0;
  const uid = options.uid ?? 65534;
  try {
    fs.writeFileSync(path.join(workdir, 'main.py'), code);
    fs.writeFileSync(path.join(workdir, '.runner.py'), RUNNER);
    for (const f of options.files ?? []) fs.writeFileSync(path.join(workdir, safeName(f.name)), f.content);
    if (asRoot) {
      fs.chmodSync(workdir, 0o700);
      for (const name of fs.readdirSync(workdir)) fs.chownSync(path.join(workdir, name), uid, uid);
      fs.chownSync(workdir, uid, uid);
    }
    const python = [PYTHON, '-I', '.runner.py'];
    const inner = mode === 'bwrap' ? [BWRAP, ...namespaceArgs(workdir), ...python] : python;
    const limited = [PRLIMIT, ...limitArgs(limits), '--', ...inner];
    const argv = asRoot
      ? [SETPRIV, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', '--', ...limited]
      : limited;
    const started = performance.now();
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: workdir,
      env: mode === 'none' ? { PATH: '/usr/bin', HOME: workdir, LANG: 'C.UTF-8' } : {},
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const stdout = collect(child.stdout as NodeJS.ReadableStream, limits.outputBytes);
    const stderr = collect(child.stderr as NodeJS.ReadableStream, limits.outputBytes);
    const report = collect(child.stdio[3] as NodeJS.ReadableStream, 128 * 1024);
    let timedOut = false;
    const killTree = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killTree();
    }, limits.wallMs);
    const onAbort = () => killTree();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const { exitCode, signal } = await new Promise<{ exitCode: number | null; signal: string | null }>(
      (resolve) => {
        child.on('error', () => resolve({ exitCode: null, signal: null }));
        child.on('close', (c, s) => resolve({ exitCode: c, signal: s }));
      },
    );
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    // Whatever it started outside the PID namespace's reach (mode none) goes with it.
    killTree();
    const wallMs = performance.now() - started;
    let result: string | null = null;
    let cpuMs: number | null = null;
    try {
      const parsed = JSON.parse(report.text()) as { result: string | null; cpu_ms: number };
      result = typeof parsed.result === 'string' ? parsed.result : null;
      cpuMs = typeof parsed.cpu_ms === 'number' ? Math.round(parsed.cpu_ms) : null;
    } catch {
      // Killed before it reported.
    }
    return {
      stdout: stdout.text(),
      stderr: stderr.text(),
      stdoutTruncated: stdout.truncated(),
      stderrTruncated: stderr.truncated(),
      result,
      exitCode,
      signal,
      timedOut,
      wallMs,
      cpuMs,
      files: returnedFiles(workdir, options.returnedFiles ?? { count: 16, bytes: 1024 * 1024 }),
    };
  } finally {
    fs.rmSync(workdir, { recursive: true, force: true });
  }
}

/**
 * Removes the working directories under `root` that a process no longer running left behind (a
 * worker killed mid-run cannot remove its run's directory). Returns how many it removed.
 */
export function sweepStaleWorkdirs(root: string = os.tmpdir()): number {
  let removed = 0;
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return 0;
  }
  for (const name of names) {
    const match = /^brain-exec-(\d+)-/.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || alive(pid)) continue;
    fs.rmSync(path.join(root, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A file name inside the working directory: no path, no dot files (the runner's own are dot files). */
function safeName(name: string): string {
  const base = path.basename(name);
  if (base !== name || base.startsWith('.') || base === 'main.py' || base.length === 0 || base.length > 128)
    throw new Error(`files: ${JSON.stringify(name)} must be a plain file name (no path, not main.py)`);
  return base;
}

/** Regular files the run left (not main.py nor the runner's), smallest first, within the bounds. */
function returnedFiles(workdir: string, bounds: { count: number; bytes: number }): SandboxFile[] {
  const out: SandboxFile[] = [];
  let bytes = 0;
  const entries = fs
    .readdirSync(workdir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name !== 'main.py' && !e.name.startsWith('.'))
    .map((e) => ({ name: e.name, size: fs.lstatSync(path.join(workdir, e.name)).size }))
    .sort((a, b) => a.size - b.size);
  for (const e of entries) {
    if (out.length >= bounds.count || bytes + e.size > bounds.bytes) break;
    out.push({ name: e.name, content: fs.readFileSync(path.join(workdir, e.name)) });
    bytes += e.size;
  }
  return out;
}
