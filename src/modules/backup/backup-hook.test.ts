import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeHookFailure, runBackupHook } from './backup-hook.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function backupFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-hook-'));
  dirs.push(dir);
  const file = path.join(dir, 'brain_20260101_000000.db.gz');
  fs.writeFileSync(file, 'x');
  return file;
}

/** Running: not gone and not a zombie (a killed orphan waits for a reaper that a container may lack). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (running(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describe('post-backup hook', () => {
  it('runs through /bin/sh with the file as $1 and BRAIN_BACKUP_FILE, in the backup directory', async () => {
    const file = backupFile();
    const outcome = await runBackupHook(
      'printf "%s|%s|%s" "$1" "$BRAIN_BACKUP_FILE" "$(pwd)" > hook.out',
      file,
      10_000,
    );
    expect(outcome).toMatchObject({ ok: true, code: 0, timedOut: false });
    const dir = path.dirname(file);
    expect(fs.readFileSync(path.join(dir, 'hook.out'), 'utf8')).toBe(
      `${file}|${file}|${fs.realpathSync(dir)}`,
    );
  });

  it('reports a failure with its exit code and the tail of its stderr', async () => {
    const outcome = await runBackupHook(
      'echo "upload refused: bucket gone" >&2; exit 3',
      backupFile(),
      10_000,
    );
    expect(outcome).toMatchObject({
      ok: false,
      code: 3,
      timedOut: false,
      stderr: 'upload refused: bucket gone',
    });
    expect(describeHookFailure(outcome, 10_000)).toBe(
      'the post-backup hook exited with 3: upload refused: bucket gone',
    );
  });

  it('kills the hook and what it started once the timeout passes', async () => {
    const file = backupFile();
    const pidFile = path.join(path.dirname(file), 'child.pid');
    // The shell starts a child and waits for it: both must go when the time is up.
    // 2 s: on a loaded machine the shell must have started its child and written the pid by then.
    const outcome = await runBackupHook(`sleep 60 & echo $! > ${pidFile}; wait`, file, 2000);
    expect(outcome).toMatchObject({ ok: false, timedOut: true });
    expect(describeHookFailure(outcome, 2000)).toMatch(
      /was killed after 2000 ms \(BRAIN_BACKUP_HOOK_TIMEOUT_MS\)/,
    );
    const child = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(child).toBeGreaterThan(0);
    // The pipe closes as the child exits, a moment before the kernel marks it gone: poll briefly.
    expect(await goneWithin(child, 5000)).toBe(true);
  });
});
