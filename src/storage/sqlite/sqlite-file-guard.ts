import fs from 'node:fs';
import { BrainError } from '../../core/errors.js';
import { replacedMessage } from './sqlite-errors.js';

/** The identity of a file: the same path with another dev+inode is another file. */
interface FileId {
  dev: number;
  ino: number;
}

/** One health check's outcome. */
export interface FileCheck {
  ok: boolean;
  message: string;
}

function fileIdOf(file: string): FileId | null {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  return stat ? { dev: stat.dev, ino: stat.ino } : null;
}

function sameFile(a: FileId | null, b: FileId | null): boolean {
  return a !== null && b !== null && a.dev === b.dev && a.ino === b.ino;
}

/**
 * Notices that the database file (or its `-wal`) at the path is no longer the one this process has
 * open: deleted (`rm`), or replaced (a file renamed over it, a restore). SQLite itself does not notice
 * in WAL mode and keeps writing to the unlinked inode, so every later write would be acknowledged and
 * then lost. Create it right after opening; once it has found the file gone, it stays failed (the open
 * handle cannot be pointed at the new file), and writes are refused until a restart.
 */
export class SqliteFileGuard {
  readonly dbPath: string;
  readonly #db: FileId | null;
  #wal: FileId | null;
  #failure: string | null = null;
  readonly #onFailure: (message: string) => void;

  constructor(dbPath: string, options: { onFailure?: (message: string) => void } = {}) {
    this.dbPath = dbPath;
    // An in-memory or temporary database has no file to lose.
    const onDisk = dbPath !== '' && dbPath !== ':memory:';
    this.#db = onDisk ? fileIdOf(dbPath) : null;
    this.#wal = onDisk ? fileIdOf(`${dbPath}-wal`) : null;
    this.#onFailure = options.onFailure ?? (() => {});
  }

  get failed(): boolean {
    return this.#failure !== null;
  }

  /** Before a write: refuses it when an earlier check found the file gone. No I/O. */
  assertWritable(): void {
    if (this.#failure !== null) throw this.#error(this.#failure);
  }

  /**
   * After a write committed, before it is acknowledged: one stat of the database path. When the file
   * is gone, the commit went to the orphaned inode; throws so the write is reported as not kept.
   */
  verifyAfterWrite(): void {
    if (this.#db === null || this.#failure !== null) {
      this.assertWritable();
      return;
    }
    if (sameFile(this.#db, fileIdOf(this.dbPath))) return;
    this.#fail(replacedMessage(this.dbPath));
    throw this.#error(`${this.#failure}. The write just made went to the old file and is not kept`);
  }

  /**
   * The periodic and health check: the database file and its write-ahead log. A deleted `-wal` loses
   * nothing while this process runs (its checkpoints still copy the orphaned log into the database
   * file, and so does closing), but a crash or another process opening the file would, so writes are
   * refused and a restart is the fix.
   */
  check(): FileCheck {
    if (this.#failure === null && this.#db !== null) {
      if (!sameFile(this.#db, fileIdOf(this.dbPath))) this.#fail(replacedMessage(this.dbPath));
      else this.#checkWal();
    }
    return this.#failure === null
      ? { ok: true, message: `database file ${this.dbPath} is in place` }
      : { ok: false, message: this.#failure };
  }

  #checkWal(): void {
    const wal = fileIdOf(`${this.dbPath}-wal`);
    // No log at open (it appears with the first write): adopt the first one seen.
    if (this.#wal === null) {
      this.#wal = wal;
      return;
    }
    if (sameFile(this.#wal, wal)) return;
    this.#fail(
      `the write-ahead log ${this.dbPath}-wal was deleted or replaced while Brain was running; writes are ` +
        'refused so none is lost — restart Brain (closing copies the writes it holds into the database file)',
    );
  }

  #fail(message: string): void {
    this.#failure = message;
    this.#onFailure(message);
  }

  #error(message: string): BrainError {
    return new BrainError('STORAGE_REPLACED', message, { path: this.dbPath });
  }
}
