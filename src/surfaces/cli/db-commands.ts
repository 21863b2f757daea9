import type { Command } from 'commander';
import type {
  CheckpointResult,
  IntegrityReport,
  MaintenanceResult,
  ProgressListener,
  RecoverReport,
  ReindexResult,
} from '../../core/integrity.js';
import { formatCheckLines } from './check-format.js';
import type { CliIo, GlobalOptions } from './cli-program.js';
import { progressBar } from './eval-format.js';

/** What `brain db …` needs from the composition root (src/app/run-db.ts). */
export interface DbRuntime {
  dbCheck(global: GlobalOptions, options: { quick: boolean }): Promise<IntegrityReport>;
  /** SQLite only; refused on PostgreSQL with what to do instead. */
  dbRecover(global: GlobalOptions, options: { force: boolean }): Promise<RecoverReport>;
  dbMaintain(global: GlobalOptions, operation: 'vacuum' | 'analyze'): Promise<MaintenanceResult>;
  dbCheckpoint(global: GlobalOptions): Promise<CheckpointResult>;
  dbReindex(global: GlobalOptions, onProgress: ProgressListener): Promise<ReindexResult>;
}

export interface DbCommandKit {
  runtime: DbRuntime;
  globals(): GlobalOptions;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
  io: CliIo;
  state: { code: number };
}

function formatReport(report: IntegrityReport): string {
  const verdict = report.ok
    ? `${report.location}: no problem found in ${report.seconds.toFixed(1)} s`
    : `${report.location}: problems found (exit 1); the fix of each is on its line`;
  return `${formatCheckLines(report.checks)}\n${verdict}`;
}

function formatRecover(r: RecoverReport): string {
  const tables = Object.entries(r.tables)
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
  return [
    `recovered ${r.path} in ${r.seconds.toFixed(1)} s: ${tables || 'no rows'}`,
    `pages: ${r.pages.total} read, ${r.pages.damaged} damaged, ${r.pages.looseRecovered} of ${r.pages.loose} cut-off pages matched to their table${r.schemaRead ? '' : ' (the schema was unreadable: rows were matched by their shape)'}${r.headerValid ? '' : '; the header was unreadable (deleted rows of freed pages may have come back)'}`,
    `the damaged file is kept as ${r.keptAside}; the text index and statistics were rebuilt, the vector index is rebuilt at the next start`,
  ].join('\n');
}

/** `brain db check|recover|vacuum|analyze|checkpoint|reindex`. */
export function registerDbCommands(program: Command, kit: DbCommandKit): void {
  const { runtime, globals, print, state } = kit;
  const db = program.command('db').description('database integrity, recovery and upkeep');
  const progress = (json: boolean | undefined): ProgressListener => {
    const tty = process.stderr.isTTY === true && !json;
    return (done, total) => {
      if (tty) process.stderr.write(`\r${progressBar('reindex', done, total)}${done === total ? '\n' : ''}`);
    };
  };

  db.command('check')
    .description(
      'check the database: the engine’s own check (SQLite integrity_check, PostgreSQL amcheck), foreign keys, the text index, its statistics and the vectors against the rows; exit 1 on any problem',
    )
    .option('--quick', 'only the engine’s quick check (SQLite quick_check)')
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const report = await runtime.dbCheck(globals(), { quick: Boolean(flags.quick) });
      print(flags.json, report, () => formatReport(report));
      if (!report.ok) state.code = 1;
    });

  db.command('recover')
    .description(
      'SQLite: copy every readable row of a damaged database into a new file, verify it, swap it in and keep the damaged file aside (stop every Brain process first)',
    )
    .option('--force', 'rebuild the file even when SQLite finds nothing wrong')
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const report = await runtime.dbRecover(globals(), { force: Boolean(flags.force) });
      print(flags.json, report, () => formatRecover(report));
    });

  for (const operation of ['vacuum', 'analyze'] as const)
    db.command(operation)
      .description(
        operation === 'vacuum'
          ? 'rewrite the database to reclaim free pages (SQLite VACUUM: needs free disk about the size of the file; PostgreSQL VACUUM ANALYZE)'
          : 'refresh the query planner’s statistics (ANALYZE)',
      )
      .option('--json', 'print JSON')
      .action(async (flags) => {
        const result = await runtime.dbMaintain(globals(), operation);
        print(flags.json, result, () =>
          result.ran ? `${result.message} (${result.seconds.toFixed(1)} s)` : `not run: ${result.message}`,
        );
        if (!result.ran) state.code = 1;
      });

  db.command('checkpoint')
    .description(
      'copy the write-ahead log into the database now and truncate it (SQLite wal_checkpoint(TRUNCATE); PostgreSQL CHECKPOINT)',
    )
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const result = await runtime.dbCheckpoint(globals());
      print(flags.json, result, () => (result.ran ? result.message : `not run: ${result.message}`));
      if (!result.ran) state.code = 1;
    });

  db.command('reindex')
    .description(
      'rebuild the text index, its statistics and the vector data from the memories (repairs what db check reports); running it again changes nothing',
    )
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const result = await runtime.dbReindex(globals(), progress(flags.json));
      print(
        flags.json,
        result,
        () =>
          `reindexed ${result.memories} memories and checked ${result.vectors} vectors in ${result.seconds.toFixed(1)} s; removed ${result.removedOrphans} stray vector or queue rows and ${result.removedIndexFiles} saved or invalid vector indexes`,
      );
    });
}
