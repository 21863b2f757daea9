import { spawn } from 'node:child_process';
import path from 'node:path';

/** How much of the hook's stderr a failure reports. */
const STDERR_TAIL = 2000;

/** How the post-backup hook ended. */
export interface HookOutcome {
  ok: boolean;
  /** The exit code, or null when a signal (or the timeout) ended it. */
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  seconds: number;
  /** The last characters it wrote to stderr. */
  stderr: string;
}

/**
 * Runs the operator's post-backup command (BRAIN_BACKUP_HOOK) through `/bin/sh -c`, with the backup's
 * path as `$1` and in `BRAIN_BACKUP_FILE`, in the backup directory. It gets its own process group so
 * that the timeout kills whatever it started too (an upload the shell forked), not only the shell.
 */
export function runBackupHook(command: string, file: string, timeoutMs: number): Promise<HookOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command, 'brain-backup-hook', file], {
      cwd: path.dirname(file),
      env: { ...process.env, BRAIN_BACKUP_FILE: file },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderr = '';
    let timedOut = false;
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL);
    });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const finish = (code: number | null, signal: string | null, extra = '') => {
      clearTimeout(timer);
      resolve({
        ok: code === 0 && !timedOut,
        code,
        signal,
        timedOut,
        seconds: (performance.now() - started) / 1000,
        stderr: (stderr + extra).trim().slice(-STDERR_TAIL),
      });
    };
    child.on('error', (error) => finish(null, null, `\n${error.message}`));
    // 'close': the shell has exited and every process holding its stderr has too.
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** One line for a failed hook: how it ended, and the tail of its stderr. */
export function describeHookFailure(outcome: HookOutcome, timeoutMs: number): string {
  const how = outcome.timedOut
    ? `was killed after ${timeoutMs} ms (BRAIN_BACKUP_HOOK_TIMEOUT_MS)`
    : outcome.code !== null
      ? `exited with ${outcome.code}`
      : `was ended by ${outcome.signal ?? 'an error'}`;
  return `the post-backup hook ${how}${outcome.stderr ? `: ${outcome.stderr}` : ''}`;
}
