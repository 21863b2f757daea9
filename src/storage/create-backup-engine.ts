import type { BackupEngine } from '../modules/backup/backup-engine.js';
import type { PgBackupSettings } from './pg/pg-backup.js';
import { createSqliteBackupEngine } from './sqlite/sqlite-backup.js';

/**
 * The one place that picks a backup driver, as createStorage picks a storage driver: PostgreSQL's
 * (pg_dump, pg_restore, psql) when `BRAIN_DATABASE_URL` is set, else SQLite's. Needs no open Storage:
 * a restore must work on a SQLite file too damaged to open.
 */
export async function createBackupEngine(settings: PgBackupSettings): Promise<BackupEngine> {
  if (!settings.databaseUrl) return createSqliteBackupEngine(settings);
  const { createPgBackupEngine } = await import('./pg/pg-backup.js');
  return createPgBackupEngine(settings);
}

/** The engine that reads snapshot files of a kind, whatever store is configured (`brain backup verify`). */
export async function snapshotInspector(
  kind: BackupEngine['kind'],
  settings: PgBackupSettings,
): Promise<BackupEngine['inspect']> {
  if (kind === 'db') return createSqliteBackupEngine(settings).inspect;
  const { createPgBackupEngine } = await import('./pg/pg-backup.js');
  // Inspecting an archive runs pg_restore only: no database is reached.
  return createPgBackupEngine({ ...settings, databaseUrl: settings.databaseUrl ?? 'postgres://localhost/' })
    .inspect;
}
