import { type BrainError, isBrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { toStorageError } from './sqlite-errors.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';

/** The names of a store's async methods. */
export type AsyncMethodName<T> = {
  [K in keyof T]: T[K] extends (...args: never[]) => Promise<unknown> ? K : never;
}[keyof T] &
  string;

export interface StoreGuardOptions {
  /** The database file, named in every message. */
  dbPath: string;
  logger: Logger;
  /** Checks around writes that the file at the path is still the one open; none for a bare store. */
  file?: SqliteFileGuard | undefined;
}

/**
 * Wraps a SQLite store's port methods once, on the instance, so that no method maps errors by hand:
 * every failure goes through {@link toStorageError} (locked, full, I/O, corrupt each get their code and
 * advice, and the cause is logged), and every write is refused when the database file is known to be
 * gone and checked after it committed, so a write is acknowledged only when it is in the file at the
 * path. Reads get no file check: recall stays free of extra I/O.
 */
export function guardStoreMethods<T extends object>(
  store: T,
  methods: { reads: readonly AsyncMethodName<T>[]; writes: readonly AsyncMethodName<T>[] },
  options: StoreGuardOptions,
): void {
  const { dbPath, logger, file } = options;
  const fail = (call: string, error: unknown): never => {
    const mapped = toStorageError(error, dbPath);
    if (mapped !== error && isBrainError(mapped)) logMapped(logger, call, mapped);
    throw mapped;
  };
  const define = (name: string, value: (...args: unknown[]) => Promise<unknown>) =>
    Object.defineProperty(store, name, { value, configurable: true, writable: true });

  for (const name of methods.reads) {
    const original = store[name] as (...args: unknown[]) => Promise<unknown>;
    define(name, (...args) => original.apply(store, args).catch((error: unknown) => fail(name, error)));
  }
  for (const name of methods.writes) {
    const original = store[name] as (...args: unknown[]) => Promise<unknown>;
    define(name, async (...args) => {
      file?.assertWritable();
      let result: unknown;
      try {
        result = await original.apply(store, args);
      } catch (error) {
        fail(name, error);
      }
      // After the commit, before the answer: a commit that went to an orphaned file is an error.
      file?.verifyAfterWrite();
      return result;
    });
  }
}

/** Lock waits are routine under contention (warn); full, failing or damaged storage is an error. */
function logMapped(logger: Logger, call: string, error: BrainError): void {
  // The driver's error without its stack: a known storage condition, and a CLI's stderr is a user's screen.
  const cause = error.cause as { name?: string; code?: string; message?: string } | undefined;
  // Not under `err`: pino's error serializer would add a `stack` field to it.
  const fields = {
    cause: cause && { type: cause.name, code: cause.code, message: cause.message },
    code: error.code,
    db: error.details.path,
    call,
  };
  if (error.code === 'STORAGE_BUSY') logger.warn(fields, 'database locked past the busy timeout');
  else logger.error(fields, `storage failed: ${error.message}`);
}
