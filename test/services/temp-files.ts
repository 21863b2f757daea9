import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Database files in fresh temporary directories, and what closes them; `cleanup()` in afterEach. */
export class TempFiles {
  readonly #prefix: string;
  readonly #dirs: string[] = [];
  readonly #cleanups: (() => void)[] = [];

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** A path `brain.db` in a new directory of its own. */
  db(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), this.#prefix));
    this.#dirs.push(dir);
    return path.join(dir, 'brain.db');
  }

  /** Runs `close` at cleanup, before the directories go. */
  onCleanup(close: () => void): void {
    this.#cleanups.push(close);
  }

  /** Runs `close` at cleanup before every other (a holder of a lock the others wait for). */
  onCleanupFirst(close: () => void): void {
    this.#cleanups.unshift(close);
  }

  cleanup(): void {
    for (const close of this.#cleanups.splice(0)) close();
    for (const dir of this.#dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  }
}
