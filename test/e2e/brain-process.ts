import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The built executable, exactly what `npm install` links as `brain`. */
export const BRAIN_BIN = path.resolve(import.meta.dirname, '../../dist/app/cli-main.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A fresh BRAIN_HOME in the temp dir; removed by the caller. */
export function tempHome(prefix = 'brain-e2e-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The environment a child gets: this process's, without any BRAIN_* setting, plus `extra`. */
export function brainEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('BRAIN_') && name !== 'LOG_LEVEL' && name !== 'NODE_ENV') env[name] = value;
  }
  return { ...env, LOG_LEVEL: 'info', ...extra };
}

/** Runs `brain <args>` to completion in `cwd` (defaults to the home, so no stray brain.config.json is read). */
export function runBrain(
  args: string[],
  env: Record<string, string>,
  cwd?: string,
  /** Written to its stdin, then closed; without it stdin is closed at once. */
  input?: string,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BRAIN_BIN, ...args], {
      env: brainEnv(env),
      cwd: cwd ?? env.BRAIN_HOME ?? os.tmpdir(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface ServingBrain {
  url: string;
  child: ChildProcess;
  /** Everything the server logged so far (JSON lines on stdout). */
  logs(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `brain serve --port 0` and resolves once it logs the URL it listens on. */
export function startServe(env: Record<string, string>, args: string[] = []): Promise<ServingBrain> {
  const child = spawn(process.execPath, [BRAIN_BIN, 'serve', '--port', '0', ...args], {
    env: brainEnv(env),
    cwd: env.BRAIN_HOME ?? os.tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`brain serve did not start:\n${logs}\n${stderr}`)),
      20_000,
    );
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdout.on('data', (chunk) => {
      logs += chunk;
      const match = /"url":"(http:\/\/[^"]+)"/.exec(logs);
      if (match) {
        clearTimeout(timer);
        resolve({
          url: match[1] as string,
          child,
          logs: () => logs,
          stop: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`brain serve exited with ${code} before listening:\n${logs}\n${stderr}`));
    });
  });
}

export interface RawMcp {
  child: ChildProcess;
  /** Writes one line (a newline is added). */
  sendLine(text: string): void;
  /** Everything the server wrote to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** The exit code, once it exits. */
  exited: Promise<number | null>;
}

/** Spawns `brain mcp` with raw pipes, for tests that write exact bytes rather than use the SDK client. */
export function spawnRawMcp(env: Record<string, string>): RawMcp {
  const child = spawn(process.execPath, [BRAIN_BIN, 'mcp'], {
    env: brainEnv(env),
    cwd: env.BRAIN_HOME ?? os.tmpdir(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  // A server that died is reported by its exit code, not by a write error here.
  child.stdin?.on('error', () => undefined);
  return {
    child,
    sendLine: (text) => child.stdin?.write(`${text}\n`),
    stdout: () => stdout,
    stderr: () => stderr,
    exited: new Promise((resolve) => child.on('exit', resolve)),
  };
}
