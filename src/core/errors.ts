/** Every error code Brain can return. Surfaces branch on `code`, never on message text. */
export type BrainErrorCode =
  | 'INVALID_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'FORBIDDEN'
  | 'UNAUTHENTICATED'
  | 'RATE_LIMITED'
  | 'QUOTA_EXCEEDED'
  | 'MAINTENANCE'
  | 'SANDBOX_TIMEOUT'
  | 'UNAVAILABLE'
  | 'STORAGE_ERROR'
  /** Another process held the database's write lock past the busy timeout: retry in a few seconds. */
  | 'STORAGE_BUSY'
  /** The disk holding the database is full (SQLITE_FULL): free space, then retry. */
  | 'STORAGE_FULL'
  /** A disk I/O error (SQLITE_IOERR*): the disk is failing or full. */
  | 'STORAGE_IO_ERROR'
  /** The database file is damaged (SQLITE_CORRUPT / SQLITE_NOTADB): restore or recover it. */
  | 'STORAGE_CORRUPT'
  /** The database file was deleted or replaced under the running process: writes are refused. */
  | 'STORAGE_REPLACED'
  | 'CONFIG_ERROR'
  | 'INTERNAL';

/** One problem with one input field, named by its dotted path. */
export interface FieldIssue {
  field: string;
  message: string;
}

export interface BrainErrorDetails {
  issues?: FieldIssue[];
  [key: string]: unknown;
}

/** The one error type of Brain. `details` carries what a caller needs to fix the request. */
export class BrainError extends Error {
  readonly code: BrainErrorCode;
  readonly details: BrainErrorDetails;

  constructor(
    code: BrainErrorCode,
    message: string,
    details: BrainErrorDetails = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'BrainError';
    this.code = code;
    this.details = details;
  }
}

export function isBrainError(value: unknown): value is BrainError {
  return value instanceof BrainError;
}

export function invalidInput(field: string, message: string): BrainError {
  return new BrainError('INVALID_INPUT', `${field}: ${message}`, { issues: [{ field, message }] });
}

export function notFound(what: string, id: string): BrainError {
  return new BrainError('NOT_FOUND', `${what} not found: ${id}`, { id });
}

/**
 * Turns anything thrown into a BrainError. Unknown errors become INTERNAL with a generic message so that
 * no stack trace or driver text reaches a user; the original stays as `cause` for the logs.
 */
export function toBrainError(error: unknown): BrainError {
  if (isBrainError(error)) return error;
  return new BrainError('INTERNAL', 'internal error; the server log has the details', {}, { cause: error });
}
