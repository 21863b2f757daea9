/**
 * A throwaway PostgreSQL cluster on 127.0.0.1 for tests and benchmarks: initdb in a temp dir, a free
 * port, trust authentication for the local user `brain`, and the pgvector extension in the template
 * database so that every database created from it has `vector`. Installed by scripts/install-services.sh;
 * nothing here downloads or mocks anything.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const VECTOR_CONTROL = '/usr/share/postgresql/15/extension/vector.control';
export const POSTGRES_USER = 'brain';

export interface LocalPostgres {
  /** postgres://brain@127.0.0.1:PORT/ without a database name; add one with `databaseUrl`. */
  baseUrl: string;
  port: number;
  dataDir: string;
  /** Stops the server, keeping its data (a database outage). */
  pause(): void;
  /** Starts it again on the same port after pause(). */
  resume(): void;
  stop(): void;
}

/** Why the cluster cannot start here (what to install), or null when it can. */
export function postgresUnavailable(): string | null {
  if (!fs.existsSync(path.join(PG_BIN, 'postgres')))
    return `PostgreSQL 15 is not installed (${PG_BIN}/postgres is missing)`;
  if (!fs.existsSync(VECTOR_CONTROL)) return `pgvector is not installed (${VECTOR_CONTROL} is missing)`;
  return null;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Runs a PostgreSQL binary as the owner of the cluster: postgres refuses to run as root. */
function runAs(owner: string | null, bin: string, args: string[]): void {
  const command = path.join(PG_BIN, bin);
  if (owner) execFileSync('runuser', ['-u', owner, '--', command, ...args], { stdio: 'pipe' });
  else execFileSync(command, args, { stdio: 'pipe' });
}

/**
 * Starts a cluster. `durable: false` (tests) turns fsync off: the tests kill Brain, never PostgreSQL, and
 * a cluster that dies with the test run needs no crash safety. Benchmarks keep the defaults.
 */
export async function startLocalPostgres(options: { durable?: boolean } = {}): Promise<LocalPostgres> {
  const missing = postgresUnavailable();
  if (missing) throw new Error(`${missing}: run scripts/install-services.sh as root`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-pg-'));
  const owner = process.getuid?.() === 0 ? 'postgres' : null;
  if (owner) execFileSync('chown', [owner, dataDir]);
  runAs(owner, 'initdb', ['-D', dataDir, '-U', POSTGRES_USER, '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const settings = [
    `-p ${port}`,
    `-k ${dataDir}`,
    "-c listen_addresses='127.0.0.1'",
    '-c max_connections=200',
    '-c shared_buffers=256MB',
    ...(options.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
  ];
  const start = () =>
    runAs(owner, 'pg_ctl', [
      '-D',
      dataDir,
      '-l',
      path.join(dataDir, 'server.log'),
      '-w',
      '-o',
      settings.join(' '),
      'start',
    ]);
  start();
  const psql = (db: string, sql: string) => runPsql('127.0.0.1', String(port), db, sql);
  // Every database created from template1 (CREATE DATABASE's default) has the extension already.
  psql('template1', 'CREATE EXTENSION IF NOT EXISTS vector');
  psql('postgres', 'CREATE EXTENSION IF NOT EXISTS vector');
  let stopped = false;
  return {
    baseUrl: `postgres://${POSTGRES_USER}@127.0.0.1:${port}/`,
    port,
    dataDir,
    pause() {
      runAs(owner, 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
    },
    resume: start,
    stop() {
      if (stopped) return;
      stopped = true;
      spawnSync(owner ? 'runuser' : path.join(PG_BIN, 'pg_ctl'), [
        ...(owner ? ['-u', owner, '--', path.join(PG_BIN, 'pg_ctl')] : []),
        '-D',
        dataDir,
        '-m',
        'immediate',
        '-w',
        'stop',
      ]);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let created = 0;

/** One statement through psql as the cluster's user, failing on any error. */
function runPsql(host: string, port: string, db: string, sql: string): void {
  execFileSync(
    'psql',
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', host, '-p', port, '-U', POSTGRES_USER, '-d', db, '-c', sql],
    { stdio: 'pipe' },
  );
}

/**
 * Creates an empty database on the cluster (with pgvector, from template1) and returns its URL. Each
 * test gets its own, so tests never see each other's rows.
 */
export function createTestDatabase(baseUrl: string, prefix = 'brain_test'): string {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${created++}`;
  const url = new URL(baseUrl);
  runPsql(url.hostname, url.port, 'postgres', `CREATE DATABASE ${name}`);
  return new URL(name, baseUrl).toString();
}
