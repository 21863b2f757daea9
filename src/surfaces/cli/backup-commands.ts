import readline from 'node:readline/promises';
import type { Command } from 'commander';
import { invalidInput } from '../../core/errors.js';
import type { BackupListing, BackupResult, BackupVerification } from '../../modules/backup/backup-service.js';
import type { RestoreOutcome, RestorePlan, RestoreSource } from '../../modules/backup/restore.js';
import { formatSize } from './check-format.js';
import type { CliIo, GlobalOptions } from './cli-program.js';
import { parseTimeOption } from './keys-commands.js';

/** What the backup and restore commands need from the composition root (src/app/run-backup.ts). */
export interface BackupRuntime {
  /** Takes one backup now, with the retention and the hook, as the scheduled job does. */
  backup(global: GlobalOptions): Promise<BackupResult>;
  listBackups(global: GlobalOptions, options: { quick: boolean }): Promise<BackupListing>;
  /** `file` as given: a path (from the working directory) or a name in the backup directory. */
  verifyBackup(global: GlobalOptions, file: string): Promise<BackupVerification>;
  restore(
    global: GlobalOptions,
    source: { file: string } | { at: Date },
    confirm: (plan: RestorePlan) => Promise<boolean>,
  ): Promise<RestoreOutcome>;
  /** The person at the terminal; unset: process.stdin and stderr (tests give a named fake). */
  terminal?: BackupTerminal;
}

/** Who confirms a restore. */
export interface BackupTerminal {
  /** Whether a person is there to answer (stdin and stderr are TTYs). */
  interactive(): boolean;
  /** Asks a yes/no question; only "y" or "yes" is yes. */
  confirm(question: string): Promise<boolean>;
}

export interface BackupCommandKit {
  runtime: BackupRuntime;
  globals(): GlobalOptions;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
  io: CliIo;
  state: { code: number };
}

/** The process's terminal: the question goes to stderr, so stdout keeps only the result. */
const processTerminal: BackupTerminal = {
  interactive: () => process.stdin.isTTY === true && process.stderr.isTTY === true,
  async confirm(question) {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
    try {
      return /^y(es)?$/i.test((await rl.question(question)).trim());
    } finally {
      rl.close();
    }
  },
};

function formatTables(tables: Record<string, number> | undefined): string {
  const entries = Object.entries(tables ?? {});
  if (entries.length === 0) return '  (no tables)';
  const width = Math.max(...entries.map(([name]) => name.length));
  return entries.map(([name, n]) => `  ${name.padEnd(width)}  ${n}`).join('\n');
}

function formatBackup(r: BackupResult): string {
  const lines = [
    `backup ${r.file}`,
    `${formatSize(r.bytes)}, sha256 ${r.sha256}, in ${r.seconds.toFixed(1)} s`,
  ];
  if (r.removed.length > 0) lines.push(`removed ${r.removed.length}: ${r.removed.join(', ')}`);
  if (r.hook) lines.push(`post-backup hook: ok in ${r.hook.seconds.toFixed(1)} s`);
  return lines.join('\n');
}

const CHECKSUM_TEXT = {
  ok: 'ok',
  mismatch: 'DAMAGED (checksum mismatch)',
  missing: 'no checksum',
  unchecked: 'not checked',
};

function formatListing(l: BackupListing): string {
  if (l.backups.length === 0) return `no backups in ${l.dir}`;
  const rows = l.backups.map((b) => [b.time, formatSize(b.bytes), CHECKSUM_TEXT[b.checksum], b.name]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  return [
    `${l.backups.length} backups in ${l.dir}, newest first:`,
    ...rows.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] as number) : cell)).join('  ')),
  ].join('\n');
}

function formatVerification(v: BackupVerification): string {
  const lines = [
    `${v.ok ? 'good' : 'NOT GOOD'}: ${v.file}`,
    `${v.kind === 'pgdump' ? 'PostgreSQL dump' : v.kind === 'db' ? 'SQLite database' : 'unknown content'}, ${formatSize(v.bytes)}, checksum ${CHECKSUM_TEXT[v.checksum]}`,
    ...(v.checks ?? []).map((c) => `✓ ${c}`),
    ...v.problems.map((p) => `✗ ${p}`),
  ];
  if (v.tables) lines.push('rows:', formatTables(v.tables));
  return lines.join('\n');
}

function formatPlan(p: RestorePlan): string {
  return [
    `restore ${p.file}`,
    `taken ${p.time ?? 'at an unknown time'}, schema version ${p.schemaVersion} (this build: ${p.latestVersion}), checksum ok`,
    'rows:',
    formatTables(p.tables),
    `it replaces ${p.target} (the current data is kept aside)`,
  ].join('\n');
}

function formatRestore(o: RestoreOutcome): string {
  if (o.status === 'cancelled') return 'restore cancelled: nothing was changed';
  return [
    `restored ${o.plan.file}`,
    `into ${o.plan.target} in ${o.seconds.toFixed(1)} s; schema version ${o.schemaVersion}` +
      (o.migrations.length > 0 ? ` (migrated: ${o.migrations.join(', ')})` : ''),
    o.aside ? `the previous data is kept at ${o.aside}` : 'there was no previous data',
  ].join('\n');
}

/** `brain backup [list|verify FILE]` and `brain restore`. */
export function registerBackupCommands(program: Command, kit: BackupCommandKit): void {
  const { runtime, globals, print, io, state } = kit;
  const terminal = runtime.terminal ?? processTerminal;
  const json = (command: Command) => Boolean(command.optsWithGlobals().json);

  const backup = program
    .command('backup')
    .description('take a backup now (online: writes go on), then apply the retention and run the hook')
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const result = await runtime.backup(globals());
      print(flags.json, result, () => formatBackup(result));
    });

  backup
    .command('list')
    .description('list the backups in BRAIN_BACKUP_PATH, newest first, each checked against its checksum')
    .option('--quick', 'do not read the files to check their checksums')
    .action(async (flags, command: Command) => {
      const listing = await runtime.listBackups(globals(), { quick: Boolean(flags.quick) });
      print(json(command), listing, () => formatListing(listing));
    });

  backup
    .command('verify')
    .description('decompress a backup, check its checksum and contents, count its rows; exit 1 if not good')
    .argument('<file>', 'a backup file, or its name in BRAIN_BACKUP_PATH')
    .action(async (file: string, _flags, command: Command) => {
      const report = await runtime.verifyBackup(globals(), file);
      print(json(command), report, () => formatVerification(report));
      if (!report.ok) state.code = 1;
    });

  program
    .command('restore')
    .description(
      'replace the store with a backup (every server stopped on SQLite; maintenance mode on for PostgreSQL); the current data is kept aside',
    )
    .argument('[file]', 'a backup file, or its name in BRAIN_BACKUP_PATH')
    .option(
      '--at <time>',
      'instead of a file: the newest backup taken at or before this ISO 8601 time (or 2h, 1d back)',
    )
    .option('--yes', 'do not ask for confirmation')
    .option('--json', 'print JSON')
    .action(async (file: string | undefined, flags) => {
      if (file !== undefined && flags.at !== undefined)
        throw invalidInput('at', 'give a file or --at, not both');
      if (file === undefined && flags.at === undefined)
        throw invalidInput(
          'file',
          'name the backup to restore, or give --at TIME (`brain backup list` shows them)',
        );
      if (!flags.yes && !terminal.interactive())
        throw invalidInput('yes', 'a restore replaces the store: confirm on a terminal, or pass --yes');
      const source: RestoreSource =
        file !== undefined ? { file } : { at: new Date(parseTimeOption('at', flags.at, new Date())) };
      const outcome = await runtime.restore(globals(), source, async (plan) => {
        if (flags.yes) return true;
        io.err(formatPlan(plan));
        return terminal.confirm('restore it? [y/N] ');
      });
      print(flags.json, outcome, () => formatRestore(outcome));
      if (outcome.status === 'cancelled') state.code = 1;
    });
}
