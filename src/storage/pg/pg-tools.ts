import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BrainError } from '../../core/errors.js';
import type { StorageSettings } from '../storage.js';

/** The PostgreSQL client programs backups use. */
export type PgTool = 'pg_dump' | 'pg_restore' | 'psql';

/** Where Debian and Ubuntu install each major version's client programs. */
const DEBIAN_BIN_ROOT = '/usr/lib/postgresql';
const SETTING: Record<PgTool, string> = {
  pg_dump: 'BRAIN_PG_DUMP_PATH',
  pg_restore: 'BRAIN_PG_RESTORE_PATH',
  psql: 'BRAIN_PG_RESTORE_PATH (psql is taken from its directory)',
};

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** /usr/lib/postgresql/<major>/bin, newest major first. */
function debianBins(): string[] {
  let versions: string[];
  try {
    versions = fs.readdirSync(DEBIAN_BIN_ROOT);
  } catch {
    return [];
  }
  return versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => path.join(DEBIAN_BIN_ROOT, v, 'bin'));
}

/**
 * A client program: the configured path (which must be there), else the one in `besideDir` (psql
 * next to the pg_restore in use, so that both are one version), else the first on PATH, else the
 * newest in /usr/lib/postgresql/*\/bin. Throws UNAVAILABLE saying how to get it.
 */
export function findPgTool(tool: PgTool, configured?: string, besideDir?: string): string {
  if (configured) {
    if (executable(configured)) return configured;
    throw new BrainError(
      'CONFIG_ERROR',
      `${SETTING[tool]}: ${configured} is not an executable file; point it at ${tool} or unset it to search PATH`,
      { setting: SETTING[tool] },
    );
  }
  const dirs = [
    ...(besideDir ? [besideDir] : []),
    ...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d.length > 0),
    ...debianBins(),
  ];
  for (const dir of dirs) {
    const candidate = path.join(dir, tool);
    if (executable(candidate)) return candidate;
  }
  throw new BrainError(
    'UNAVAILABLE',
    `${tool} was not found on PATH nor in ${DEBIAN_BIN_ROOT}/*/bin: install the PostgreSQL client programs of the server's major version (Debian: postgresql-client) or set ${SETTING[tool]}`,
    { tool },
  );
}

/**
 * How a client program reaches the database: the URL without its password (command lines are visible
 * to every user of the machine), the password in PGPASSWORD, and BRAIN_DATABASE_SSL as PGSSLMODE.
 */
export function pgToolConnection(settings: StorageSettings): { url: string; env: NodeJS.ProcessEnv } {
  const url = new URL(settings.databaseUrl as string);
  const password = decodeURIComponent(url.password);
  url.password = '';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGAPPNAME: 'brain-backup',
    PGCONNECT_TIMEOUT: String(Math.max(1, Math.ceil(settings.databaseConnectTimeoutMs / 1000))),
  };
  if (password) env.PGPASSWORD = password;
  if (settings.databaseSsl !== 'prefer-url') {
    // The setting wins over the URL's own sslmode, as it does for the server's connections.
    url.searchParams.delete('sslmode');
    env.PGSSLMODE = settings.databaseSsl;
    if (settings.databaseSsl === 'verify-full' && settings.databaseSslCaFile)
      env.PGSSLROOTCERT = settings.databaseSslCaFile;
  }
  return { url: url.toString(), env };
}

/** How much of a tool's stderr an error quotes. */
const STDERR_TAIL = 1500;

/** A running client program, its stderr's tail, and its end. */
export interface ToolRun {
  child: ChildProcess;
  stderr(): string;
  /** Resolves when it exits 0; rejects with STORAGE_ERROR quoting its stderr otherwise. */
  done: Promise<void>;
}

/** Starts `bin args…`, stdout piped (or `stdin` too), stderr collected for the error. */
export function runTool(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin: 'ignore' | 'pipe' = 'ignore',
): ToolRun {
  const child = spawn(bin, args, { env, stdio: [stdin, 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL);
  });
  const name = path.basename(bin);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (error) =>
      reject(new BrainError('UNAVAILABLE', `could not run ${bin}: ${error.message}`, { tool: name })),
    );
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new BrainError(
            'STORAGE_ERROR',
            `${name} failed (${code !== null ? `exit ${code}` : signal}): ${stderr.trim() || 'no message'}`,
            { tool: name, stderr: stderr.trim() },
          ),
        );
    });
  });
  return { child, stderr: () => stderr, done };
}
