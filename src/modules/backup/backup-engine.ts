import type { Readable } from 'node:stream';
import type { BackupKind } from './backup-names.js';

/** What a look inside an uncompressed snapshot found. */
export interface SnapshotInspection {
  /** The schema version the snapshot is at (its schema_migrations). */
  schemaVersion: number;
  /** The newest schema version this build knows. */
  latestVersion: number;
  /** Rows per table, by table name. */
  tables: Record<string, number>;
  /** What was checked and how it came out, one line each ("PRAGMA integrity_check: ok"). */
  checks: string[];
  /** Why the snapshot is not usable (damaged, not a Brain store); empty when it is. */
  problems: string[];
}

/** What a restore did to the live store. */
export interface RestoreSwap {
  /** Where the data that was there is kept: a file beside the database, or a schema; null when there was none. */
  aside: string | null;
}

/**
 * The engine side of backups and restores, one per storage driver (src/storage/*\/…-backup.ts), picked
 * by the composition root like a Storage. The backup module does the rest (compression, checksums,
 * names, retention, the hook), the same for every engine.
 */
export interface BackupEngine {
  readonly kind: BackupKind;
  /** Where the live store is, for messages: the database file, or the URL without its password. */
  readonly location: string;
  /**
   * What a restore needs of the running servers: all stopped (SQLite: a file swapped under a running
   * process would take its writes to a file no one reads), or maintenance mode on (PostgreSQL).
   */
  readonly restoreNeeds: 'stopped' | 'maintenance';
  /**
   * A consistent copy of the live store taken while writes go on, uncompressed, as a stream that errors
   * when the snapshot fails. Scratch files go in `scratchDir` as `….<pid>.partial` and are gone once the
   * stream has closed.
   */
  snapshot(scratchDir: string, baseName: string): Promise<Readable>;
  /** Checks an uncompressed snapshot: readable and intact, its schema version, rows per table. */
  inspect(file: string): Promise<SnapshotInspection>;
  /**
   * Where a snapshot to restore is decompressed, and the start of its file name: SQLite stages beside
   * the database so that the swap is a rename; PostgreSQL uses `fallbackDir` (the backup directory).
   */
  staging(fallbackDir: string): { dir: string; prefix: string };
  /** Throws CONFLICT when a process other than this one has the store open and that forbids a restore. */
  assertNotInUse(): Promise<void>;
  /**
   * Replaces the live store with an inspected snapshot in one step that cannot be left half done,
   * keeping what was there aside under a name made of `stamp`. The snapshot file is consumed.
   */
  restore(file: string, stamp: string): Promise<RestoreSwap>;
}
