import pino from 'pino';

/** Where a process's logs go: stdout for the HTTP server, stderr under stdio MCP and for CLI commands. */
export type LogStream = 'stdout' | 'stderr';

/**
 * The process logger: pino JSON lines at `level`. Writes are synchronous so that the last lines before
 * a crash or exit are not lost in a buffer. Under `brain mcp` stdout carries only protocol, so logs go
 * to stderr (desktop clients keep it in their MCP log).
 */
export function createAppLogger(level: string, stream: LogStream): pino.Logger {
  const fd = stream === 'stdout' ? 1 : 2;
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: fd, sync: true }));
}

/** A CLI command's logger: only warnings and worse, so that human output stays readable. */
export function cliLogLevel(configured: string): string {
  const order = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  return order.indexOf(configured) > order.indexOf('warn') ? configured : 'warn';
}
