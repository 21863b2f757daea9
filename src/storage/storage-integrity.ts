/**
 * The integrity and upkeep side of a Storage (`brain db check|vacuum|analyze|checkpoint|reindex`, and
 * the scheduler's VACUUM/ANALYZE and checkpoint jobs), engine-neutral: each driver implements it in its
 * own file (sqlite-integrity.ts, pg-integrity.ts).
 */

import type {
  CheckpointResult,
  IntegrityReport,
  MaintenanceResult,
  ProgressListener,
  ReindexResult,
  StoreActivity,
} from '../core/integrity.js';

export type {
  CheckpointResult,
  IntegrityCheck,
  IntegrityReport,
  IntegrityStatus,
  MaintenanceResult,
  ProgressListener,
  ReindexResult,
  StoreActivity,
} from '../core/integrity.js';

export interface StorageIntegrity {
  /**
   * Every consistency check of the engine: the engine's own (integrity_check, amcheck), foreign keys,
   * text search and vectors against the rows. `quick`: the engine's cheaper check only (doctor).
   */
  check(options?: { quick?: boolean }): Promise<IntegrityReport>;
  /** SQLite VACUUM (refused, as a value, when the disk lacks the room it needs); PostgreSQL VACUUM. */
  vacuum(): Promise<MaintenanceResult>;
  /** ANALYZE: refreshes the planner's statistics. */
  analyze(): Promise<MaintenanceResult>;
  /** SQLite `wal_checkpoint(TRUNCATE)`; PostgreSQL `CHECKPOINT` where the role may (else a value saying so). */
  checkpoint(): Promise<CheckpointResult>;
  /** Rebuilds text search and vector data from the memories; idempotent. */
  reindex(onProgress?: ProgressListener): Promise<ReindexResult>;
  /** Memories by type and tier, sessions seen at or after `since` (ISO 8601 UTC): `brain report daily`. */
  activity(since: string): Promise<StoreActivity>;
}
