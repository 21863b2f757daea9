import type { Command } from 'commander';
import { type CheckLine, formatCheckLines, formatSize } from './check-format.js';
import type { CliIo, GlobalOptions } from './cli-program.js';

/** What `brain doctor` found: one line per check; `ok` unless one failed (warnings do not fail). */
export interface DoctorReport {
  ok: boolean;
  checks: CheckLine[];
}

/** The operations guide's daily check (`brain report daily`), over the last 24 hours. */
export interface DailyReport {
  generated_at: string;
  since: string;
  service: { running: boolean; url: string; status: string | null; version: string | null; message: string };
  database: { engine: string; location: string; size_bytes: number };
  memories: {
    live: number;
    forgotten: number;
    by_type: Record<string, number>;
    by_tier: Record<string, number>;
  };
  sessions: { total: number; active: number };
  errors: {
    /** Lines at level error or fatal in BRAIN_LOG_PATH's error.log files; null when no log path is set. */
    log: { count: number; files: string[]; last: string | null } | null;
    audit: { failed: number; denied: number };
  };
  slow_queries: { count: number; threshold_ms: number; slowest: { sql: string; elapsed_ms: number } | null };
}

/** What `brain doctor` and `brain report daily` need from the composition root (src/app). */
export interface DoctorRuntime {
  doctor(global: GlobalOptions): Promise<DoctorReport>;
  dailyReport(global: GlobalOptions): Promise<DailyReport>;
}

export interface DoctorCommandKit {
  runtime: DoctorRuntime;
  globals(): GlobalOptions;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
  io: CliIo;
  state: { code: number };
}

function counts(values: Record<string, number>): string {
  const entries = Object.entries(values);
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
}

export function formatDailyReport(r: DailyReport): string {
  const log = r.errors.log
    ? `${r.errors.log.count} in the log files${r.errors.log.last ? ` (last: ${r.errors.log.last})` : ''}`
    : 'log files not kept (set BRAIN_LOG_PATH to count them)';
  const slow = r.slow_queries.slowest
    ? `${r.slow_queries.count} over ${r.slow_queries.threshold_ms} ms (slowest ${r.slow_queries.slowest.elapsed_ms.toFixed(0)} ms: ${r.slow_queries.slowest.sql.slice(0, 80)})`
    : `none over ${r.slow_queries.threshold_ms} ms`;
  return [
    `daily report, ${r.since} to ${r.generated_at}`,
    `service:      ${r.service.message}`,
    `database:     ${r.database.engine} ${r.database.location}, ${formatSize(r.database.size_bytes)}`,
    `memories:     ${r.memories.live} (${r.memories.forgotten} forgotten)`,
    `  by type:    ${counts(r.memories.by_type)}`,
    `  by tier:    ${counts(r.memories.by_tier)}`,
    `sessions:     ${r.sessions.active} active in 24 h (${r.sessions.total} in all)`,
    `errors:       ${log}; audit: ${r.errors.audit.failed} failed, ${r.errors.audit.denied} denied`,
    `slow queries: ${slow}`,
  ].join('\n');
}

/** `brain doctor` and `brain report daily`. */
export function registerDoctorCommands(program: Command, kit: DoctorCommandKit): void {
  const { runtime, globals, print, state } = kit;
  program
    .command('doctor')
    .description(
      'run every health check (config, database, migrations, disk, backups, embedder, PostgreSQL and Redis, ports, permissions) and print one line each with the fix; exit 1 on any ✗',
    )
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const report = await runtime.doctor(globals());
      print(flags.json, report, () => formatCheckLines(report.checks));
      if (!report.ok) state.code = 1;
    });

  program
    .command('report')
    .description('reports for the operator')
    .command('daily')
    .description(
      'the daily check: service status, memory counts by type and tier, database size, errors, sessions and slow queries of the last 24 hours',
    )
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const report = await runtime.dailyReport(globals());
      print(flags.json, report, () => formatDailyReport(report));
    });
}
