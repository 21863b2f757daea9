import fs from 'node:fs';
import pino from 'pino';
import { createStream, type FileSize, type RotatingFileStream } from 'rotating-file-stream';
import { BrainError } from '../core/errors.js';
import { currentRequestId, REQUEST_ID_LOG_FIELD } from '../core/request-context.js';

/** Where a process's logs go: stdout for the HTTP server, stderr under stdio MCP and for CLI commands. */
export type LogStream = 'stdout' | 'stderr';

/**
 * What pino replaces with `[redacted]` on every line, wherever a logger is made: credentials a request
 * carries, and secret-looking fields one level down in any logged object (and at the top).
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'password',
  'token',
  'apiKey',
  'secret',
  '*.password',
  '*.token',
  '*.apiKey',
  '*.secret',
];

/** The files under BRAIN_LOG_PATH, and how many rotated copies of each are kept (`name.1` newest). */
export const LOG_FILES = {
  combined: { name: 'combined.log', keep: 10 },
  error: { name: 'error.log', keep: 5 },
} as const;

/** Size at which a log file is rotated. */
export const LOG_ROTATE_SIZE: FileSize = '10M';

export interface AppLoggerOptions {
  level: string;
  stream: LogStream;
  /** BRAIN_LOG_PATH: also write `combined.log` and `error.log` there; none: the terminal only. */
  logPath?: string | undefined;
  /** Rotation size of the files (rotating-file-stream syntax); tests make it tiny. Default 10 MB. */
  rotateSize?: FileSize;
  /** Where terminal lines go instead of fd 1/2: a test stand-in that captures them. */
  terminal?: pino.DestinationStream;
}

/** How a logger's own bindings say it is a request's logger (Fastify's `request.log` and its children). */
const BOUND_REQUEST_ID = `"${REQUEST_ID_LOG_FIELD}":`;

/**
 * pino's `mixin`: a line logged while a request is handled carries that request's id, whichever logger
 * wrote it (services hold the process logger, not `request.log`). Fastify's request logger binds the
 * id already; it gets nothing here, so the field is never written twice. A new object every call:
 * pino merges the line's fields into it.
 */
export function requestIdMixin(_line: object, _level: number, logger: pino.Logger): object {
  const id = currentRequestId();
  if (id === undefined) return {};
  const bindings = (logger as unknown as Record<symbol, string | undefined>)[pino.symbols.chindingsSym];
  return bindings?.includes(BOUND_REQUEST_ID) ? {} : { [REQUEST_ID_LOG_FIELD]: id };
}

/** A process logger; `closeFiles` ends its log files once every line written reached them. */
export type AppLogger = pino.Logger & { closeFiles(): Promise<void> };

/**
 * The process logger: pino JSON lines at `level`, secrets redacted, each line logged while an HTTP
 * request is handled stamped with its `request_id` ({@link requestIdMixin}). Terminal writes are synchronous so
 * that the last lines before a crash or exit are not lost in a buffer. Under `brain mcp` stdout carries
 * only protocol, so logs go to stderr (desktop clients keep it in their MCP log).
 *
 * With `logPath`, every line also goes to `combined.log` and errors to `error.log`, rotated by size.
 * Those writes are asynchronous (rotating-file-stream): a process that ends by itself writes them out
 * first; one killed or ended by `process.exit` may lose its last lines in the files, never on the
 * terminal. Throws CONFIG_ERROR when the directory cannot be created.
 */
export function createAppLogger(options: AppLoggerOptions): AppLogger {
  const { level } = options;
  const terminal =
    options.terminal ?? pino.destination({ dest: options.stream === 'stdout' ? 1 : 2, sync: true });
  const settings: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    mixin: requestIdMixin,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  if (!options.logPath) return Object.assign(pino(settings, terminal), { closeFiles: async () => {} });
  const files = openLogFiles(options.logPath, options.rotateSize ?? LOG_ROTATE_SIZE, terminal);
  const streams = pino.multistream([
    { level: level as pino.Level, stream: terminal },
    { level: level as pino.Level, stream: files.combined },
    { level: 'error', stream: files.error },
  ]);
  return Object.assign(pino(settings, streams), { closeFiles: files.close });
}

/** The two rotating files, created in `dir` (made if missing). */
function openLogFiles(dir: string, size: FileSize, terminal: pino.DestinationStream) {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new BrainError(
      'CONFIG_ERROR',
      `BRAIN_LOG_PATH: cannot create the log directory ${dir} (${code}); fix the path or its permissions, or unset it to log to the terminal only`,
      { setting: 'logPath', path: dir },
    );
  }
  const open = (file: { name: string; keep: number }): RotatingFileStream => {
    const stream = createStream(file.name, { path: dir, size, rotate: file.keep });
    // A file that fails (disk full, directory removed) must not end the process: say so once on the
    // terminal, which keeps every line.
    let told = false;
    stream.on('error', (error) => {
      if (told) return;
      told = true;
      const line = { level: 50, time: Date.now(), pid: process.pid, file: `${dir}/${file.name}` };
      terminal.write(`${JSON.stringify({ ...line, err: error.message, msg: 'log file failed' })}\n`);
    });
    return stream;
  };
  const combined = open(LOG_FILES.combined);
  const error = open(LOG_FILES.error);
  const end = (stream: RotatingFileStream) =>
    new Promise<void>((resolve) => {
      if (stream.writableFinished || stream.destroyed) return resolve();
      stream.once('finish', () => resolve());
      stream.once('error', () => resolve());
      stream.end();
    });
  return {
    combined,
    error,
    close: async () => {
      await Promise.all([end(combined), end(error)]);
    },
  };
}

/** A CLI command's logger: only warnings and worse, so that human output stays readable. */
export function cliLogLevel(configured: string): string {
  const order = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  return order.indexOf(configured) > order.indexOf('warn') ? configured : 'warn';
}
