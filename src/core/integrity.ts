/**
 * The value types of integrity checks and upkeep (`brain db …`, `brain doctor`), shared by the storage
 * drivers that produce them and the surfaces that print them.
 */

/** One check's verdict: `warn` says "look at it" and does not fail; `skipped` says why it did not run. */
export type IntegrityStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export interface IntegrityCheck {
  /** Short stable name: `integrity_check`, `foreign_keys`, `text_index`, `vectors`, … */
  name: string;
  status: IntegrityStatus;
  /** What was found, one sentence. */
  message: string;
  /** What to run when it is not ok. */
  fix?: string;
}

/** What `brain db check` reports: `ok` unless a check failed. */
export interface IntegrityReport {
  engine: 'sqlite' | 'postgres';
  location: string;
  ok: boolean;
  checks: IntegrityCheck[];
  seconds: number;
}

/** A VACUUM or ANALYZE that ran (or was refused with its reason: a value, not an exception). */
export interface MaintenanceResult {
  operation: 'vacuum' | 'analyze' | 'vacuum-analyze';
  ran: boolean;
  /** Why it did not run, or what it did. */
  message: string;
  seconds: number;
  /** Store size before and after, in bytes. */
  bytesBefore: number;
  bytesAfter: number;
}

/** A WAL checkpoint (SQLite: pages of the log and how many were copied; PostgreSQL: CHECKPOINT). */
export interface CheckpointResult {
  ran: boolean;
  message: string;
  /** SQLite: frames in the log before the checkpoint, and frames copied into the database. */
  logPages: number;
  checkpointedPages: number;
  /** SQLite: a reader kept part of the log from being copied (it is copied on a later checkpoint). */
  busy: boolean;
}

/** What `brain db reindex` rebuilt. */
export interface ReindexResult {
  /** Live memories whose text-search entries were rebuilt. */
  memories: number;
  /** Vector rows checked (and orphans removed); saved vector index files removed (SQLite). */
  vectors: number;
  removedOrphans: number;
  removedIndexFiles: number;
  seconds: number;
}

/** Reports progress of a long operation: `done` of `total` units. */
export type ProgressListener = (done: number, total: number) => void;

/** What `brain report daily` counts in the store: memories by type and tier, sessions seen. */
export interface StoreActivity {
  memories: {
    /** Not forgotten (expired ones included until they are purged). */
    live: number;
    forgotten: number;
    byType: Record<string, number>;
    byTier: Record<string, number>;
  };
  sessions: { total: number; activeSince: number };
}

/** What `brain db recover` did (SQLite). */
export interface RecoverReport {
  path: string;
  /** Where the damaged file was kept (`brain_corrupt_<time>.db` beside it). */
  keptAside: string;
  headerValid: boolean;
  /** Whether the old schema table could be read (else rows were matched to tables by their shape). */
  schemaRead: boolean;
  /** Rows in the recovered file, per table copied. */
  tables: Record<string, number>;
  pages: { total: number; damaged: number; free: number; loose: number; looseRecovered: number };
  seconds: number;
}
