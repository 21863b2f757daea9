import { BrainError, isBrainError } from '../../core/errors.js';

/** The SQLite (or errno) code of a thrown driver error, e.g. `SQLITE_BUSY`, `SQLITE_IOERR_WRITE`. */
export function sqliteCodeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function storageError(
  code: BrainError['code'],
  message: string,
  dbPath: string,
  sqliteCode: string,
  cause: unknown,
): BrainError {
  return new BrainError(code, message, { path: dbPath, sqliteCode }, { cause });
}

/** The text of the advice for a damaged file; docs/OPERATIONS.md ("A damaged database") has the steps. */
function corruptMessage(dbPath: string): string {
  return (
    `database file ${dbPath} is corrupt or not a SQLite database: stop Brain, then run \`brain db recover\` ` +
    '(it copies every readable row into a new file and keeps the damaged one aside), or restore a backup ' +
    '(`brain restore`); docs/OPERATIONS.md, "A damaged database"'
  );
}

/**
 * The one mapping from what SQLite reports to a BrainError a person can act on, for every store call
 * and for opening. Returns `error` unchanged when it is already a BrainError, or when it is no known
 * storage condition (a bug, a constraint): those stay INTERNAL for the surfaces, which log them.
 */
export function toStorageError(error: unknown, dbPath: string): unknown {
  if (isBrainError(error)) return error;
  const code = sqliteCodeOf(error);
  const text = error instanceof Error ? error.message : String(error);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return storageError(
      'STORAGE_BUSY',
      `database file ${dbPath} is locked by another process and stayed locked past the busy timeout; ` +
        'nothing was written: wait a few seconds and retry. If it persists, end the other ' +
        'transaction (e.g. a sqlite3 shell left open) or raise BRAIN_BUSY_TIMEOUT_MS',
      dbPath,
      code,
      error,
    );
  }
  if (code === 'SQLITE_FULL') {
    return storageError(
      'STORAGE_FULL',
      `the disk holding database file ${dbPath} is full (SQLITE_FULL); nothing was written: free disk space, then retry`,
      dbPath,
      code,
      error,
    );
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return storageError(
      'STORAGE_IO_ERROR',
      `disk I/O error on database file ${dbPath} (${code}); the change may not be saved: the disk may be full or ` +
        'failing — free disk space or check the disk, then restart Brain',
      dbPath,
      code,
      error,
    );
  }
  if (
    code.startsWith('SQLITE_CORRUPT') ||
    code === 'SQLITE_NOTADB' ||
    /not a database|malformed/i.test(text)
  ) {
    return storageError('STORAGE_CORRUPT', corruptMessage(dbPath), dbPath, code, error);
  }
  // SQLite notices a moved file itself only in rollback-journal mode; SqliteFileGuard covers WAL mode.
  if (code === 'SQLITE_READONLY_DBMOVED') {
    return storageError('STORAGE_REPLACED', replacedMessage(dbPath), dbPath, code, error);
  }
  return error;
}

/** What a write is refused with once the database file at `dbPath` is not the one Brain has open. */
export function replacedMessage(dbPath: string): string {
  return (
    `the database file ${dbPath} was deleted or replaced while Brain was running; writes are refused so ` +
    'none is lost — restart Brain (it will open the file now at that path) or restore the file'
  );
}

/**
 * Maps what SQLite says when a file cannot serve as our database to an error a person can act on.
 * Trigger: open or first query fails. Outcome: the storage code of {@link toStorageError} when the
 * condition is one (locked, full, corrupt), else STORAGE_ERROR naming the file and the likely fix.
 */
export function describeOpenError(dbPath: string, error: unknown): BrainError {
  const mapped = toStorageError(error, dbPath);
  if (isBrainError(mapped)) return mapped;
  const code = sqliteCodeOf(error);
  const text = error instanceof Error ? error.message : String(error);
  const unwritable =
    code.startsWith('SQLITE_READONLY') ||
    code === 'SQLITE_PERM' ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code === 'EACCES' ||
    code === 'ENOTDIR' ||
    code === 'EROFS';
  const message = unwritable
    ? `cannot open database file ${dbPath} for writing: check that its directory exists and is writable (BRAIN_DB_PATH / BRAIN_HOME)`
    : `cannot open database file ${dbPath}: ${text}`;
  return storageError('STORAGE_ERROR', message, dbPath, code, error);
}
