import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { BrainError } from '../../core/errors.js';
import type { BackupEngine, RestoreSwap, SnapshotInspection } from '../../modules/backup/backup-engine.js';
import { fsyncPath } from '../../modules/backup/backup-files.js';
import { partialName } from '../../modules/backup/backup-names.js';
import type { StorageSettings } from '../storage.js';
import {
  BACKUP_WORKER_SOURCE,
  type BackupJob,
  type BackupWorkerData,
  type BackupWorkerReply,
} from './sqlite-backup-worker.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import { vectorIndexDirFor } from './vector-index-file.js';

/** How long the in-use probe waits for another process's lock: it only asks whether one is held. */
const PROBE_TIMEOUT_MS = 200;

const LATEST = SQLITE_MIGRATIONS.at(-1)?.version ?? 0;

/** An error posted by the worker, with its code (SQLITE_FULL, ENOSPC…) back on it. */
class WorkerError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | null) {
    super(message);
    this.code = code ?? undefined;
  }
}

function runWorker(job: BackupJob): Promise<SnapshotInspection> {
  const workerData: BackupWorkerData = {
    ...job,
    driver: createRequire(import.meta.url).resolve('better-sqlite3'),
    latestVersion: LATEST,
  };
  return new Promise((resolve, reject) => {
    const worker = new Worker(BACKUP_WORKER_SOURCE, { eval: true, workerData });
    let settled = false;
    worker.on('message', (reply: BackupWorkerReply) => {
      settled = true;
      if (reply.type === 'done') resolve(reply.inspection);
      else reject(new WorkerError(reply.message, reply.code));
      void worker.terminate();
    });
    worker.on('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`the backup worker exited with ${code} before answering`));
    });
  });
}

/** A SQLite error code on an error, if it has one. */
function codeOf(error: unknown): string {
  return (error as { code?: string } | null)?.code ?? '';
}

/**
 * The SQLite side of backups (BackupEngine): the online backup API in a worker thread, the copy checked
 * with integrity_check before it is compressed; restores by one rename beside the database.
 */
export function createSqliteBackupEngine(
  settings: Pick<StorageSettings, 'dbPath' | 'busyTimeoutMs'>,
): BackupEngine {
  const dbPath = settings.dbPath;
  const dir = path.dirname(dbPath);

  /**
   * Whether another process has the database open: every connection in WAL mode holds a shared lock on
   * the file for as long as it is open, so an exclusive-mode read fails at once when one exists. Then
   * the probe checkpoints the log into the file (it is the last connection), so the file alone is the
   * whole database. A file too damaged to read cannot tell: it is let through (restoring it is the fix).
   */
  const quiesce = (): void => {
    if (!fs.existsSync(dbPath)) return;
    let db: Database.Database | undefined;
    try {
      db = new Database(dbPath, { fileMustExist: true, timeout: PROBE_TIMEOUT_MS });
      db.pragma('locking_mode = EXCLUSIVE');
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (error) {
      const code = codeOf(error);
      if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED')
        throw new BrainError(
          'CONFLICT',
          `the database ${dbPath} is open in another process (a running \`brain serve\`, \`brain mcp\` or other Brain command): stop every Brain process that uses it, then restore`,
          { path: dbPath },
        );
      if (!code.startsWith('SQLITE_CORRUPT') && code !== 'SQLITE_NOTADB') throw error;
    } finally {
      db?.close();
    }
  };

  return {
    kind: 'db',
    location: dbPath,
    restoreNeeds: 'stopped',
    async snapshot(scratchDir, baseName): Promise<Readable> {
      if (!fs.existsSync(dbPath))
        throw new BrainError('NOT_FOUND', `there is no database at ${dbPath} to back up`, { path: dbPath });
      const raw = partialName(path.join(scratchDir, `${baseName}.raw`));
      try {
        const inspection = await runWorker({
          mode: 'snapshot',
          dbPath,
          target: raw,
          busyTimeoutMs: settings.busyTimeoutMs,
        });
        if (inspection.problems.length > 0)
          throw new BrainError(
            'STORAGE_CORRUPT',
            `the copy of ${dbPath} failed its check (${inspection.problems.join('; ')}): the live database is likely damaged; run \`brain db check\``,
            { path: dbPath },
          );
      } catch (error) {
        fs.rmSync(raw, { force: true });
        throw error;
      }
      const stream = fs.createReadStream(raw);
      stream.on('close', () => fs.rmSync(raw, { force: true }));
      return stream;
    },
    inspect: (file) => runWorker({ mode: 'inspect', file, busyTimeoutMs: settings.busyTimeoutMs }),
    staging: () => ({ dir, prefix: `${path.basename(dbPath)}.restore` }),
    async assertNotInUse() {
      quiesce();
    },
    async restore(staged, stamp): Promise<RestoreSwap> {
      quiesce();
      let aside: string | null = null;
      if (fs.existsSync(dbPath)) {
        aside = freeName(path.join(dir, `brain_old_${stamp}`), '.db');
        keepAside(dbPath, aside);
      }
      // A log left at the path would be replayed onto the restored file at its first open.
      for (const suffix of ['-wal', '-shm', '-journal']) fs.rmSync(`${dbPath}${suffix}`, { force: true });
      fsyncPath(staged);
      fs.renameSync(staged, dbPath);
      fsyncPath(dir);
      // The saved vector indexes describe the old rows: rebuilt from the restored ones.
      const vectors = vectorIndexDirFor(dbPath);
      if (vectors) fs.rmSync(vectors, { recursive: true, force: true });
      return { aside };
    },
  };
}

/** `base + ext`, or `base_2 + ext`… when taken. */
function freeName(base: string, ext: string): string {
  for (let n = 1; ; n++) {
    const candidate = `${base}${n > 1 ? `_${n}` : ''}${ext}`;
    if (!fs.existsSync(candidate)) return candidate;
  }
}

/**
 * The current database, kept at `aside` while it stays at its path until the rename replaces it: a hard
 * link (instant, no space), or a copy where links are not allowed. A log the checkpoint could not empty
 * (a damaged file) goes aside with it.
 */
function keepAside(dbPath: string, aside: string): void {
  try {
    fs.linkSync(dbPath, aside);
  } catch {
    fs.copyFileSync(dbPath, aside, fs.constants.COPYFILE_EXCL);
    fsyncPath(aside);
  }
  const wal = `${dbPath}-wal`;
  if (fs.existsSync(wal) && fs.statSync(wal).size > 0) fs.copyFileSync(wal, `${aside}-wal`);
  fsyncPath(path.dirname(aside));
}
