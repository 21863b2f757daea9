/**
 * The worker thread that copies a live SQLite database with the online backup API and checks the copy,
 * so that a gigabyte's copy and integrity check never hold the server's event loop (the scheduled
 * backup runs inside `brain serve`). It also inspects snapshot files (verify, restore).
 *
 * Why a function and not a worker file: like use-lite-worker.ts, it runs as `new Worker(source,
 * { eval: true })`, the same from dist/ and under vitest; so it is self-contained, CommonJS `require`
 * only, the driver's absolute path passed in.
 */

import type { SnapshotInspection } from '../../modules/backup/backup-engine.js';

/** What the parent asks: copy `dbPath` into `target` and check it, or check `file`. */
export type BackupJob = { busyTimeoutMs: number } & (
  | { mode: 'snapshot'; dbPath: string; target: string }
  | { mode: 'inspect'; file: string }
);

/** The job, with the driver's absolute path and this build's newest schema version. */
export type BackupWorkerData = BackupJob & { driver: string; latestVersion: number };

export type BackupWorkerReply =
  | { type: 'done'; inspection: SnapshotInspection }
  | { type: 'error'; message: string; code: string | null };

/** The body of the worker thread. Never called in the parent process. */
export function backupWorkerMain(): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const data = workerData as BackupWorkerData;
  type Db = import('better-sqlite3').Database;
  const Database = require(data.driver) as typeof import('better-sqlite3');

  const inspect = (db: Db): SnapshotInspection => {
    const checks: string[] = [];
    const problems: string[] = [];
    const integrity = (db.pragma('integrity_check(20)') as { integrity_check: string }[]).map(
      (r) => r.integrity_check,
    );
    if (integrity.length === 1 && integrity[0] === 'ok') checks.push('PRAGMA integrity_check: ok');
    else problems.push(`PRAGMA integrity_check: ${integrity.join('; ')}`);
    const objects = db
      .prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
      .all() as { name: string; sql: string | null }[];
    const virtual = objects.filter((o) => /^CREATE VIRTUAL TABLE/i.test(o.sql ?? '')).map((o) => o.name);
    const tables: Record<string, number> = {};
    for (const { name } of objects) {
      // A full-text index and its shadow tables are derived from the rows: not counted.
      if (virtual.some((v) => name === v || name.startsWith(`${v}_`))) continue;
      tables[name] = (
        db.prepare(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).get() as { n: number }
      ).n;
    }
    checks.push(`rows counted in ${Object.keys(tables).length} tables`);
    let schemaVersion = 0;
    if ('schema_migrations' in tables) {
      schemaVersion =
        (db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
      checks.push(`schema version ${schemaVersion} (this build: ${data.latestVersion})`);
    } else problems.push('it has no schema_migrations table: not a Brain database');
    return { schemaVersion, latestVersion: data.latestVersion, tables, checks, problems };
  };

  const run = async (): Promise<SnapshotInspection> => {
    if (data.mode === 'snapshot') {
      const source = new Database(data.dbPath, { fileMustExist: true, timeout: data.busyTimeoutMs });
      try {
        // One step: a single read transaction copies every page. In WAL mode it never blocks the
        // writers of other connections, whose commits would restart a copy made in several steps.
        await source.backup(data.target, { progress: () => 0x7fffffff });
      } finally {
        source.close();
      }
    }
    const file = data.mode === 'snapshot' ? data.target : data.file;
    const db = new Database(file, { fileMustExist: true, timeout: data.busyTimeoutMs });
    try {
      // The copy carries the source's WAL flag; a rollback journal keeps the snapshot one file.
      if (data.mode === 'snapshot') db.pragma('journal_mode = DELETE');
      return inspect(db);
    } catch (error) {
      // A file too damaged to read at all: that is what the inspection found.
      const code = (error as { code?: string } | null)?.code ?? '';
      if (!code.startsWith('SQLITE_CORRUPT') && code !== 'SQLITE_NOTADB') throw error;
      const problem = `it is not a readable SQLite database (${(error as Error).message})`;
      return {
        schemaVersion: 0,
        latestVersion: data.latestVersion,
        tables: {},
        checks: [],
        problems: [problem],
      };
    } finally {
      db.close();
    }
  };

  run().then(
    (inspection) => parentPort?.postMessage({ type: 'done', inspection } satisfies BackupWorkerReply),
    (error: unknown) =>
      parentPort?.postMessage({
        type: 'error',
        message: error instanceof Error ? error.message : String(error),
        code: (error as { code?: string } | null)?.code ?? null,
      } satisfies BackupWorkerReply),
  );
}

/** The worker's source, for `new Worker(source, { eval: true })`. */
export const BACKUP_WORKER_SOURCE = `(${backupWorkerMain.toString()})();`;
