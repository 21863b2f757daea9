import { invalidInput } from '../../core/errors.js';
import type { GlobalOptions } from './cli-program.js';

/** One recorded statement as `brain status --slow-queries` prints it. */
export interface SlowQueryView {
  sql: string;
  elapsed_ms: number;
  /** ISO 8601 UTC. */
  created_at: string;
}

/** The slowest recorded statements, and the threshold that recorded them (BRAIN_SLOW_QUERY_MS; 0 = off). */
export interface SlowQueriesReport {
  threshold_ms: number;
  queries: SlowQueryView[];
}

/** What `brain status --slow-queries` needs from the composition root. */
export interface SlowQueriesRuntime {
  /** The slowest statements in `query_log`, slowest first, at most `limit`. */
  slowQueries(global: GlobalOptions, options: { limit: number }): Promise<SlowQueriesReport>;
}

export const SLOW_QUERIES_LIMIT = { default: 20, max: 1000 } as const;

/**
 * What `brain status` was asked for: the slow-query listing (with its limit), or null for the usual
 * status. `--limit` alone is a usage error: it would otherwise be silently ignored.
 */
export function slowQueriesRequest(flags: {
  slowQueries?: boolean;
  limit?: unknown;
}): { limit: number } | null {
  if (!flags.slowQueries) {
    if (flags.limit !== undefined) throw invalidInput('limit', 'goes with --slow-queries');
    return null;
  }
  const limit = flags.limit ?? SLOW_QUERIES_LIMIT.default;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > SLOW_QUERIES_LIMIT.max)
    throw invalidInput(
      'limit',
      `must be an integer from 1 to ${SLOW_QUERIES_LIMIT.max}, got ${JSON.stringify(flags.limit)}`,
    );
  return { limit };
}

/** Longest statement text shown per line; `--json` has it whole. */
const SQL_CHARS = 160;

export function formatSlowQueries(report: SlowQueriesReport): string {
  const threshold =
    report.threshold_ms > 0
      ? `statements slower than ${report.threshold_ms} ms are recorded (BRAIN_SLOW_QUERY_MS)`
      : 'the slow-query log is off (BRAIN_SLOW_QUERY_MS=0); earlier records are shown';
  if (report.queries.length === 0) return `no slow statements recorded in the last 7 days; ${threshold}`;
  const width = Math.max(...report.queries.map((q) => q.elapsed_ms.toFixed(1).length));
  const lines = report.queries.map((q) => {
    const sql = q.sql.length > SQL_CHARS ? `${q.sql.slice(0, SQL_CHARS - 1)}…` : q.sql;
    return `${q.elapsed_ms.toFixed(1).padStart(width)} ms  ${q.created_at}  ${sql}`;
  });
  const noun = report.queries.length === 1 ? 'statement' : 'statements';
  return [`${report.queries.length} slowest ${noun}; ${threshold}`, ...lines].join('\n');
}
