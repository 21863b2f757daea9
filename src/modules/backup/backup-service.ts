import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from '../../core/clock.js';
import { BrainError, invalidInput, isBrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { BackupEngine, SnapshotInspection } from './backup-engine.js';
import {
  type ChecksumState,
  checksumState,
  gunzipTo,
  isDiskFull,
  publish,
  readChecksum,
  removeStale,
  sha256OfFile,
  writeChecksum,
  writeGzipped,
} from './backup-files.js';
import { describeHookFailure, type HookOutcome, runBackupHook } from './backup-hook.js';
import {
  type BackupKind,
  type BackupName,
  CHECKSUM_SUFFIX,
  nextBackupName,
  parseBackupName,
  partialName,
} from './backup-names.js';
import { planRetention } from './retention.js';

/** The settings backups read, named as in BrainConfig (which satisfies this type); see docs/CONFIG.md. */
export interface BackupSettings {
  backupPath: string;
  backupKeepHourlyDays: number;
  backupKeepDailyDays: number;
  backupKeepWeeklyDays: number;
  backupHook?: string | undefined;
  backupHookTimeoutMs: number;
}

/** What one backup run made and removed. */
export interface BackupResult {
  /** The backup's absolute path. */
  file: string;
  name: string;
  kind: BackupKind;
  /** When it was taken (ISO 8601, UTC). */
  time: string;
  /** Size of the compressed file. */
  bytes: number;
  sha256: string;
  seconds: number;
  /** Files removed by the retention (with their checksums) and stale partial files, by name. */
  removed: string[];
  /** How the post-backup hook ended; null when none is configured. */
  hook: HookOutcome | null;
}

export interface BackupRunOptions {
  clock: Clock;
  logger: Logger;
}

/** The backups in a directory, newest first: its backups' names only, no I/O but a listing. */
export function backupNames(dir: string, kind?: BackupKind): BackupName[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map(parseBackupName)
    .filter((b): b is BackupName => b !== null && (kind === undefined || b.kind === kind))
    .sort((a, b) => b.time.getTime() - a.time.getTime() || b.name.localeCompare(a.name));
}

const isBackupName = (name: string) => parseBackupName(name) !== null;

function fullDisk(dir: string, error: unknown): BrainError {
  return new BrainError(
    'STORAGE_FULL',
    `the backup directory ${dir} is full: the backup was not written and the previous backups are kept; free space there (or point BRAIN_BACKUP_PATH at a larger disk), then retry`,
    { path: dir },
    { cause: error },
  );
}

/**
 * Takes one backup: the engine's consistent snapshot of the live store, gzipped into the backup
 * directory through a `.partial` file (fsynced, then renamed, its checksum written first), so that a
 * crash or a kill at any point leaves no file that passes for a good backup. Then the retention, then
 * the hook. A full disk fails with STORAGE_FULL and removes what was written; a failing hook fails the
 * run (UNAVAILABLE, the hook's stderr in the message) but keeps the backup, which `details.backup` holds.
 */
export async function takeBackup(
  engine: BackupEngine,
  settings: BackupSettings,
  options: BackupRunOptions,
): Promise<BackupResult> {
  const started = performance.now();
  const dir = settings.backupPath;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const removed = removeStale(dir, isBackupName);
  const now = options.clock.now();
  const name = nextBackupName(engine.kind, now, new Set(fs.readdirSync(dir)));
  const file = path.join(dir, name);
  let written: { sha256: string; bytes: number };
  try {
    const snapshot = await engine.snapshot(dir, name.replace(/\.gz$/, ''));
    written = await writeGzipped(snapshot, file);
    writeChecksum(file, written.sha256);
    publish(file);
  } catch (error) {
    fs.rmSync(partialName(file), { force: true });
    fs.rmSync(`${file}${CHECKSUM_SUFFIX}`, { force: true });
    if (isDiskFull(error)) throw fullDisk(dir, error);
    throw error;
  }
  removed.push(...applyRetention(dir, settings, now, name));
  const result: BackupResult = {
    file,
    name,
    kind: engine.kind,
    time: parseBackupName(name)?.time.toISOString() ?? now.toISOString(),
    bytes: written.bytes,
    sha256: written.sha256,
    seconds: 0,
    removed,
    hook: null,
  };
  options.logger.info({ file, bytes: result.bytes, removed }, 'backup written');
  if (settings.backupHook) {
    result.hook = await runBackupHook(settings.backupHook, file, settings.backupHookTimeoutMs);
    result.seconds = (performance.now() - started) / 1000;
    if (!result.hook.ok) {
      const why = describeHookFailure(result.hook, settings.backupHookTimeoutMs);
      options.logger.error({ file, hook: result.hook }, `backup kept, but ${why}`);
      throw new BrainError('UNAVAILABLE', `backup ${file} was written and is kept, but ${why}`, {
        backup: result,
      });
    }
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/** Removes what the retention no longer keeps (each backup with its checksum); never `keepName`. */
function applyRetention(dir: string, settings: BackupSettings, now: Date, keepName: string): string[] {
  const plan = planRetention(
    backupNames(dir),
    now,
    {
      hourlyDays: settings.backupKeepHourlyDays,
      dailyDays: settings.backupKeepDailyDays,
      weeklyDays: settings.backupKeepWeeklyDays,
    },
    new Set([keepName]),
  );
  const removed: string[] = [];
  for (const backup of plan.remove) {
    fs.rmSync(path.join(dir, backup.name), { force: true });
    fs.rmSync(path.join(dir, `${backup.name}${CHECKSUM_SUFFIX}`), { force: true });
    removed.push(backup.name);
  }
  return removed;
}

/** One backup as `brain backup list` shows it. */
export interface BackupEntry {
  file: string;
  name: string;
  kind: BackupKind;
  time: string;
  bytes: number;
  /** The file against its `.sha256`: 'unchecked' when the listing was asked not to read the files. */
  checksum: ChecksumState | 'unchecked';
}

export interface BackupListing {
  dir: string;
  backups: BackupEntry[];
  /** Stale partial files (and orphaned checksums) removed while listing. */
  removed: string[];
}

/** The backups in the backup directory, newest first, each checked against its checksum unless `quick`. */
export async function listBackups(
  settings: BackupSettings,
  options: { quick?: boolean } = {},
): Promise<BackupListing> {
  const dir = settings.backupPath;
  const removed = removeStale(dir, isBackupName);
  const backups: BackupEntry[] = [];
  for (const backup of backupNames(dir)) {
    const file = path.join(dir, backup.name);
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    if (!stat) continue;
    backups.push({
      file,
      name: backup.name,
      kind: backup.kind,
      time: backup.time.toISOString(),
      bytes: stat.size,
      checksum: options.quick ? 'unchecked' : await checksumState(file),
    });
  }
  return { dir, backups, removed };
}

/** The newest backup whose checksum matches, for /health and metrics: its time and age. */
export interface LastGoodBackup {
  file: string;
  time: string;
  ageSeconds: number;
}

/**
 * The newest backup of `kind` that matches its checksum (each file read once per process, then
 * remembered for its size and time), or null when there is none.
 */
export async function findLastGoodBackup(
  dir: string,
  kind: BackupKind,
  now: Date,
): Promise<LastGoodBackup | null> {
  for (const backup of backupNames(dir, kind)) {
    const file = path.join(dir, backup.name);
    try {
      if ((await checksumState(file, { cache: true })) !== 'ok') continue;
    } catch {
      // Removed while we looked (the retention): the next one.
      continue;
    }
    return {
      file,
      time: backup.time.toISOString(),
      ageSeconds: Math.max(0, Math.round((now.getTime() - backup.time.getTime()) / 1000)),
    };
  }
  return null;
}

/** What `brain backup verify` found. */
export interface BackupVerification extends Partial<SnapshotInspection> {
  file: string;
  kind: BackupKind | null;
  /** From the name, when it is a backup's name. */
  time: string | null;
  bytes: number;
  sha256: string;
  checksum: ChecksumState;
  /** Every problem found; none: the backup is good. */
  problems: string[];
  ok: boolean;
}

/** Reads an uncompressed snapshot of a kind (SQLite file or pg_dump archive). */
export type SnapshotInspector = (kind: BackupKind, file: string) => Promise<SnapshotInspection>;

/** The kind of an uncompressed snapshot from its first bytes, or null when it is neither. */
export function snapshotKind(file: string): BackupKind | null {
  const head = Buffer.alloc(16);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 16, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString('latin1') === 'SQLite format 3\u0000') return 'db';
  if (head.subarray(0, 5).toString('latin1') === 'PGDMP') return 'pgdump';
  return null;
}

/** A backup path as given, or a bare name looked up in the backup directory. */
export function resolveBackupFile(
  given: string,
  settings: BackupSettings,
  cwd: string,
  field = 'file',
): string {
  const direct = path.resolve(cwd, given);
  if (fs.existsSync(direct)) return direct;
  const inDir = path.join(settings.backupPath, given);
  if (!given.includes(path.sep) && fs.existsSync(inDir)) return inDir;
  throw invalidInput(
    field,
    `no such file: ${direct} (nor ${inDir}); \`brain backup list\` shows the backups`,
  );
}

/**
 * `brain backup verify FILE`: decompresses the backup into a scratch file in the backup directory
 * (hashing it on the way), compares the checksum, and has the engine of its kind check the snapshot:
 * SQLite's integrity_check and row counts, or the pg_dump archive's table of contents and every data
 * block read back with row counts. The scratch file is removed at the end.
 */
export async function verifyBackup(
  file: string,
  settings: BackupSettings,
  inspector: SnapshotInspector,
): Promise<BackupVerification> {
  const named = parseBackupName(path.basename(file));
  const dir = settings.backupPath;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  removeStale(dir, isBackupName);
  const scratch = partialName(path.join(dir, `${path.basename(file)}.verify`));
  const expected = readChecksum(file);
  const report: BackupVerification = {
    file,
    kind: named?.kind ?? null,
    time: named?.time.toISOString() ?? null,
    bytes: fs.statSync(file).size,
    sha256: '',
    checksum: 'missing',
    problems: [],
    ok: false,
  };
  try {
    report.sha256 = await gunzipTo(file, scratch, 'file');
    report.checksum = expected === null ? 'missing' : expected === report.sha256 ? 'ok' : 'mismatch';
    if (report.checksum === 'missing')
      report.problems.push(`no checksum file ${path.basename(file)}${CHECKSUM_SUFFIX} beside it`);
    if (report.checksum === 'mismatch')
      report.problems.push(
        `the file does not match its checksum ${path.basename(file)}${CHECKSUM_SUFFIX}: it is damaged`,
      );
    const kind = snapshotKind(scratch);
    if (kind === null) {
      report.problems.push('it holds neither a SQLite database nor a pg_dump archive: not a Brain backup');
    } else {
      if (report.kind !== null && report.kind !== kind)
        report.problems.push(`its name says ${report.kind} but it holds ${kind}`);
      report.kind = kind;
      const inspection = await inspector(kind, scratch);
      Object.assign(report, inspection, { problems: [...report.problems, ...inspection.problems] });
      if (inspection.schemaVersion > inspection.latestVersion)
        report.problems.push(
          `its schema version ${inspection.schemaVersion} is newer than this build's ${inspection.latestVersion}: restore it with the Brain version that made it`,
        );
    }
  } catch (error) {
    if (!isBrainError(error) || error.code !== 'INVALID_INPUT') throw error;
    // Not decompressible: the checksum still says whether it is the file that was written.
    if (report.sha256 === '') {
      report.sha256 = await sha256OfFile(file);
      report.checksum = expected === null ? 'missing' : expected === report.sha256 ? 'ok' : 'mismatch';
      if (report.checksum === 'mismatch')
        report.problems.push(
          `the file does not match its checksum ${path.basename(file)}${CHECKSUM_SUFFIX}: it is damaged`,
        );
    }
    report.problems.push(error.message.replace(/^file: /, ''));
  } finally {
    fs.rmSync(scratch, { force: true });
  }
  report.ok = report.problems.length === 0;
  return report;
}
