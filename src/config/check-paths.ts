import fs from 'node:fs';
import path from 'node:path';
import type { BrainConfig } from './config-schema.js';
import type { ConfigProblem } from './load-config.js';

/** Whether this process may create entries in `dir`. */
function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The nearest existing ancestor of `target` (or `target` itself), and whether it is a directory. */
function nearestExisting(target: string): { at: string; isDir: boolean } {
  let current = target;
  for (;;) {
    try {
      return { at: current, isDir: fs.statSync(current).isDirectory() };
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return { at: current, isDir: false };
      current = parent;
    }
  }
}

/** Why a directory could not be used or created at `dir`, or null if it can. */
function directoryProblem(dir: string): string | null {
  const { at, isDir } = nearestExisting(dir);
  if (!isDir)
    return at === dir ? `${dir} is not a directory` : `${at} is not a directory, so ${dir} cannot be created`;
  if (writable(at)) return null;
  return at === dir ? `${dir} is not writable` : `${at} is not writable, so ${dir} cannot be created`;
}

/** Why the database file could not be opened for writing, or null if it can. */
function databaseProblem(file: string): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return directoryProblem(path.dirname(file));
    return `cannot inspect ${file} (${code})`;
  }
  if (stat.isDirectory()) return `${file} is a directory; give the path of the database file`;
  try {
    fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return `${file} is not readable and writable by this user`;
  }
  // SQLite creates the -wal and -shm files beside the database, so its directory must be writable too.
  const dir = path.dirname(file);
  return writable(dir) ? null : `${dir} is not writable (SQLite keeps ${path.basename(file)}-wal there)`;
}

/**
 * Checks that every path can be used: the database file (or, if it does not exist yet, its directory)
 * is readable and writable, and the other directories exist or can be created. Creates nothing.
 */
export function checkPaths(config: BrainConfig): ConfigProblem[] {
  const checks: [string, string | null][] = [
    ['BRAIN_DB_PATH', databaseProblem(config.dbPath)],
    ['BRAIN_BACKUP_PATH', directoryProblem(config.backupPath)],
    ['BRAIN_LOG_PATH', config.logPath ? directoryProblem(config.logPath) : null],
    ['BRAIN_EXECUTION_PATH', directoryProblem(config.executionPath)],
    ['BRAIN_NOTES_PATH', directoryProblem(config.notesPath)],
  ];
  return checks.flatMap(([setting, message]) =>
    message ? [{ setting, source: 'filesystem', message: `${setting}: ${message}` }] : [],
  );
}
