import path from 'node:path';
import type { BrainConfig } from '../config/config-schema.js';
import { type Clock, systemClock } from '../core/clock.js';
import { BrainError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import {
  type BackupListing,
  type BackupResult,
  type BackupVerification,
  findLastGoodBackup,
  type LastGoodBackup,
  listBackups,
  resolveBackupFile,
  takeBackup,
  verifyBackup,
} from '../modules/backup/backup-service.js';
import {
  type RestoreOutcome,
  type RestorePlan,
  type RestoreSource,
  restoreBackup,
} from '../modules/backup/restore.js';
import { MAINTENANCE_FILE, Maintenance } from '../modules/maintenance/maintenance.js';
import { createBackupEngine, snapshotInspector } from '../storage/create-backup-engine.js';
import { createStorage } from '../storage/create-storage.js';
import type { BackupRuntime } from '../surfaces/cli/backup-commands.js';
import type { GlobalOptions } from '../surfaces/cli/cli-program.js';
import { migrateDatabase } from './build-brain.js';

export interface RunBackupOptions {
  logger?: Logger;
  clock?: Clock;
}

/**
 * One backup of the configured store, as `brain backup` and the scheduled job take it: snapshot,
 * gzip, checksum, retention, hook. Rejects with STORAGE_FULL on a full backup disk (previous backups
 * kept), with UNAVAILABLE when the hook fails (the backup kept, in `details.backup`), or with the
 * engine's error (pg_dump missing or failing, a damaged database).
 */
export async function runBackup(config: BrainConfig, options: RunBackupOptions = {}): Promise<BackupResult> {
  const engine = await createBackupEngine(config);
  return takeBackup(engine, config, {
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger,
  });
}

/**
 * The newest backup of the configured engine in BRAIN_BACKUP_PATH that matches its checksum, with its
 * age, or null: for /health (warn past BRAIN_BACKUP_MAX_AGE_HOURS) and `brain_backup_age_seconds`.
 * Each file is hashed once per process (then known by its size and time).
 */
export function lastGoodBackup(config: BrainConfig, now: Date = new Date()): Promise<LastGoodBackup | null> {
  return findLastGoodBackup(config.backupPath, config.databaseUrl ? 'pgdump' : 'db', now);
}

/** `brain backup list`. */
export function listConfiguredBackups(
  config: BrainConfig,
  options: { quick?: boolean } = {},
): Promise<BackupListing> {
  return listBackups(config, options);
}

/** `brain backup verify FILE`, FILE as given from `cwd` or named in the backup directory. */
export function verifyConfiguredBackup(
  config: BrainConfig,
  file: string,
  cwd: string,
): Promise<BackupVerification> {
  return verifyBackup(resolveBackupFile(file, config, cwd), config, async (kind, snapshot) =>
    (await snapshotInspector(kind, config))(snapshot),
  );
}

/**
 * PostgreSQL is restored under replicas that keep running: every one of them must be refusing writes,
 * which the shared maintenance row (not a machine's MAINTENANCE_MODE file) guarantees.
 */
async function assertMaintenance(config: BrainConfig, logger: Logger, clock: Clock): Promise<void> {
  const storage = await createStorage(config, { logger });
  try {
    const maintenance = new Maintenance(storage.stores().config, {
      file: path.join(config.home, MAINTENANCE_FILE),
      clock,
    });
    const state = await maintenance.state();
    if (state.on && state.source === 'database') return;
    const now = state.on ? "only this machine's MAINTENANCE_MODE file has it on" : 'it is off';
    throw new BrainError(
      'CONFLICT',
      `a PostgreSQL restore needs maintenance mode on for every process on ${storage.location} (${now}): run \`brain maintenance on --reason restore\`, restore, restart the servers, check, then \`brain maintenance off\``,
    );
  } finally {
    await storage.close();
  }
}

export interface RestoreOptions {
  cwd: string;
  logger?: Logger;
  clock?: Clock;
  confirm(plan: RestorePlan): Promise<boolean>;
}

/** `brain restore`: the checks of the engine (stopped, or maintenance mode), then restoreBackup. */
export async function restoreConfiguredStore(
  config: BrainConfig,
  source: RestoreSource,
  options: RestoreOptions,
): Promise<RestoreOutcome> {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const engine = await createBackupEngine(config);
  if (engine.restoreNeeds === 'maintenance') await assertMaintenance(config, logger, clock);
  const resolved = 'file' in source ? { file: resolveBackupFile(source.file, config, options.cwd) } : source;
  return restoreBackup(engine, config, resolved, {
    clock,
    confirm: options.confirm,
    migrate: () => migrateDatabase(config, logger),
  });
}

/** `brain backup` and `brain restore` on the configured store. */
export function backupRuntime(
  load: (global: GlobalOptions) => { config: BrainConfig; logger: Logger },
): BackupRuntime {
  return {
    backup: (global) => {
      const { config, logger } = load(global);
      return runBackup(config, { logger });
    },
    listBackups: (global, options) => listConfiguredBackups(load(global).config, options),
    verifyBackup: (global, file) => verifyConfiguredBackup(load(global).config, file, process.cwd()),
    restore: (global, source, confirm) => {
      const { config, logger } = load(global);
      return restoreConfiguredStore(config, source, { cwd: process.cwd(), logger, confirm });
    },
  };
}
