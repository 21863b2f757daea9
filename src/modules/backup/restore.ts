import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from '../../core/clock.js';
import { BrainError, invalidInput } from '../../core/errors.js';
import type { BackupEngine } from './backup-engine.js';
import { gunzipTo, readChecksum, removeStale } from './backup-files.js';
import { type BackupKind, CHECKSUM_SUFFIX, parseBackupName, partialName, timeStamp } from './backup-names.js';
import { type BackupSettings, backupNames, snapshotKind } from './backup-service.js';

/** Which backup to restore: a file, or the newest not after a time. */
export type RestoreSource = { file: string } | { at: Date };

/** What a restore is about to do, shown before it asks for confirmation. */
export interface RestorePlan {
  file: string;
  kind: BackupKind;
  /** When the backup was taken, from its name (null for a file not named like a backup). */
  time: string | null;
  sha256: string;
  schemaVersion: number;
  latestVersion: number;
  tables: Record<string, number>;
  /** The store that will be replaced. */
  target: string;
}

export type RestoreOutcome =
  | { status: 'cancelled'; plan: RestorePlan }
  | {
      status: 'restored';
      plan: RestorePlan;
      /** Where the data that was there is kept. */
      aside: string | null;
      /** Migrations applied to the restored store. */
      migrations: string[];
      schemaVersion: number;
      seconds: number;
    };

export interface RestoreHooks {
  clock: Clock;
  /** Asked once the backup is verified; false cancels with nothing changed. */
  confirm(plan: RestorePlan): Promise<boolean>;
  /** Brings the restored store to this build's schema (the composition root opens it to do so). */
  migrate(): Promise<{ applied: string[]; current: number }>;
}

const KIND_NAMES: Record<BackupKind, string> = { db: 'SQLite', pgdump: 'PostgreSQL' };

/** The newest backup of `kind` in the directory taken at or before `at`. */
export function backupAt(settings: BackupSettings, kind: BackupKind, at: Date): string {
  const found = backupNames(settings.backupPath, kind).find((b) => b.time.getTime() <= at.getTime());
  if (!found)
    throw new BrainError(
      'NOT_FOUND',
      `no ${KIND_NAMES[kind]} backup taken at or before ${at.toISOString()} in ${settings.backupPath}; \`brain backup list\` shows them`,
      { at: at.toISOString(), dir: settings.backupPath },
    );
  return path.join(settings.backupPath, found.name);
}

/**
 * `brain restore`: checks that nothing forbids it (engine.assertNotInUse), decompresses the backup
 * beside the store (so that the swap is one rename on SQLite), checks its checksum, its contents and its
 * schema version (a newer one than this build's is refused), asks for confirmation, checks again that
 * the store is not in use, swaps, and migrates. Until the swap nothing of the live store is touched; the
 * swap itself is one rename (SQLite) or one transaction (PostgreSQL), so a kill or a failure anywhere
 * leaves either the old store or the restored one, never a mix. Staging files are removed on the way out.
 */
export async function restoreBackup(
  engine: BackupEngine,
  settings: BackupSettings,
  source: RestoreSource,
  hooks: RestoreHooks,
): Promise<RestoreOutcome> {
  const started = performance.now();
  const file = 'file' in source ? source.file : backupAt(settings, engine.kind, source.at);
  const named = parseBackupName(path.basename(file));
  if (named && named.kind !== engine.kind) throw wrongKind(file, named.kind, engine);
  await engine.assertNotInUse();
  const expected = readChecksum(file);
  if (expected === null)
    throw invalidInput(
      'file',
      `no checksum file ${path.basename(file)}${CHECKSUM_SUFFIX} beside ${file}: only a verified backup is restored (if you trust the file, write one with \`sha256sum ${path.basename(file)} > ${path.basename(file)}${CHECKSUM_SUFFIX}\`)`,
    );
  const { dir, prefix } = engine.staging(settings.backupPath);
  fs.mkdirSync(dir, { recursive: true });
  removeStale(dir, () => false, { only: (name) => name.startsWith(`${prefix}.`) });
  const staged = partialName(path.join(dir, prefix));
  try {
    const sha256 = await gunzipTo(file, staged, 'file');
    if (sha256 !== expected)
      throw invalidInput(
        'file',
        `${file} does not match its checksum ${path.basename(file)}${CHECKSUM_SUFFIX}: it is damaged; nothing was changed`,
      );
    const kind = snapshotKind(staged);
    if (kind !== engine.kind) throw wrongKind(file, kind, engine);
    const inspection = await engine.inspect(staged);
    if (inspection.problems.length > 0)
      throw invalidInput(
        'file',
        `${file} is not a usable backup (${inspection.problems.join('; ')}); nothing was changed`,
      );
    if (inspection.schemaVersion > inspection.latestVersion)
      throw invalidInput(
        'file',
        `${file} is at schema version ${inspection.schemaVersion}, newer than this build's ${inspection.latestVersion}: restore it with the Brain version that made it (or upgrade Brain); nothing was changed`,
      );
    const plan: RestorePlan = {
      file,
      kind,
      time: named?.time.toISOString() ?? null,
      sha256,
      schemaVersion: inspection.schemaVersion,
      latestVersion: inspection.latestVersion,
      tables: inspection.tables,
      target: engine.location,
    };
    if (!(await hooks.confirm(plan))) return { status: 'cancelled', plan };
    // The confirmation may have waited a while: a server started meanwhile would lose its writes.
    await engine.assertNotInUse();
    const swap = await engine.restore(staged, timeStamp(hooks.clock.now()));
    const migrated = await hooks.migrate().catch((error: unknown) => {
      // The swap is done and stays done: say so, with what is left to do.
      const why = error instanceof Error ? error.message : String(error);
      throw new BrainError(
        'STORAGE_ERROR',
        `${file} was restored into ${engine.location} (the previous data is kept at ${swap.aside ?? 'nowhere: there was none'}), but the migrations failed: ${why}; fix that, then run \`brain migrate\``,
        { aside: swap.aside },
        { cause: error },
      );
    });
    return {
      status: 'restored',
      plan,
      aside: swap.aside,
      migrations: migrated.applied,
      schemaVersion: migrated.current,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    fs.rmSync(staged, { force: true });
  }
}

function wrongKind(file: string, kind: BackupKind | null, engine: BackupEngine): BrainError {
  const holds =
    kind === null ? 'neither a SQLite database nor a pg_dump archive' : `a ${KIND_NAMES[kind]} backup`;
  return invalidInput(
    'file',
    `${file} is ${holds}, and this Brain stores on ${KIND_NAMES[engine.kind]} (${engine.location}); move data between engines with \`brain store copy\``,
  );
}
