/**
 * A spawned `brain serve` for the HTTP bench: the built program on a free port, its readiness, its
 * worker processes (the primary's children) and their memory from /proc, and a clean stop.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { freePort } from '../test/services/local-postgres.js';
import { BRAIN_BIN } from './mcp-bench.js';
import { parseProcStatus, type RssFigures } from './stats.js';

/** How long a server may take from spawn to its first ready answer (loading a 100k store included). */
const READY_TIMEOUT_MS = 120_000;
/** How long SIGTERM may take to drain and exit before the bench kills the server. */
const STOP_TIMEOUT_MS = 30_000;
/** Output kept for an error message: the tail of stdout and stderr together. */
const OUTPUT_TAIL = 8192;

export interface ServerProcess {
  url: string;
  /** The primary process (with BRAIN_WORKERS > 1 it forks and waits; the workers serve). */
  pid: number;
  /** The primary's child processes (its workers), with their RSS now (null: unreadable). */
  workers(): { pid: number; rss: RssFigures | null }[];
  /** Log lines at warn or above that the server printed so far. */
  warnings(): string[];
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<StopResult>;
}

/** How a SIGTERM went: the primary's exit code (null: a signal ended it), how long, and whether the
 * primary had to kill its workers (it logs so; its exit code does not say). */
export interface StopResult {
  exitCode: number | null;
  ms: number;
  workersKilled: boolean;
}

/** What the primary of serve-cluster.ts logs when its workers outlive their drain. */
const KILLED = /did not stop in time/;

/** Child pids of `pid`, from /proc/<pid>/task/<tid>/children (Linux); empty elsewhere. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // Not Linux, or the process is gone: no children to report.
  }
  return out;
}

function rssOf(pid: number): RssFigures | null {
  try {
    return parseProcStatus(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return null;
  }
}

/** pino's numeric levels: 40 is warn. */
function isWarning(line: string): boolean {
  const level = /"level":(\d+)/.exec(line)?.[1];
  return level !== undefined && Number(level) >= 40;
}

/**
 * Spawns `brain serve --port <free port>` with `env` over the bench's own environment and waits until
 * `GET /health/ready` answers 200; throws with the server's output when it exits or never gets ready.
 */
export async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [BRAIN_BIN, 'serve', '--port', String(port)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const warnings: string[] = [];
  let partial = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    tail = (tail + text).slice(-OUTPUT_TAIL);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (isWarning(line) || !line.startsWith('{')) warnings.push(line);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exitCode !== undefined)
      throw new Error(`brain serve exited ${exitCode} before it was ready:\n${tail}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`brain serve was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${tail}`);
    }
    const status = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.status)
      .catch(() => 0);
    if (status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const pid = child.pid as number;
  return {
    url,
    pid,
    workers: () => childPids(pid).map((p) => ({ pid: p, rss: rssOf(p) })),
    warnings: () => [...warnings],
    async stop() {
      const start = performance.now();
      if (exitCode === undefined) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return {
        exitCode: code,
        ms: performance.now() - start,
        workersKilled: warnings.some((w) => KILLED.test(w)),
      };
    },
  };
}
