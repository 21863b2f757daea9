import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { BrainError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import type { BackupEngine, RestoreSwap, SnapshotInspection } from '../../modules/backup/backup-engine.js';
import { guardedStream } from '../../modules/backup/backup-files.js';
import { partialName } from '../../modules/backup/backup-names.js';
import { MAINTENANCE_KEY } from '../../modules/maintenance/maintenance.js';
import { redactUrl } from '../redact-url.js';
import type { StorageSettings } from '../storage.js';
import { renewEveryToken } from './pg-change-versions.js';
import { PgDatabase } from './pg-database.js';
import { PG_MIGRATIONS } from './pg-migrations.js';
import { findPgTool, pgToolConnection, runTool } from './pg-tools.js';

/** The settings of the PostgreSQL backup engine: the store's, and where the client programs are. */
export interface PgBackupSettings extends StorageSettings {
  pgDumpPath?: string | undefined;
  pgRestorePath?: string | undefined;
}

const LATEST = PG_MIGRATIONS.at(-1)?.version ?? 0;

/** `"name"`, quoted for SQL. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
/** `'text'`, quoted for SQL. */
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The schema Brain's tables are in for this URL (its search_path's first): what is backed up and restored. */
async function currentSchema(settings: StorageSettings): Promise<string> {
  const db = new PgDatabase({ ...settings, databasePoolSize: 1, databaseReadUrl: undefined }, silentLogger);
  try {
    const { rows } = await db.query<{ s: string | null }>('SELECT current_schema() AS s', [], db.primary);
    const schema = rows[0]?.s;
    if (!schema)
      throw new BrainError('STORAGE_ERROR', `${db.where} has no current schema (its search_path is empty)`);
    return schema;
  } finally {
    await db.close();
  }
}

/** Table of contents entries of a custom-format archive (`pg_restore --list`), comments dropped. */
async function tocOf(restoreBin: string, file: string): Promise<string[]> {
  const run = runTool(restoreBin, ['--list', file], process.env);
  let text = '';
  run.child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  await run.done;
  return text.split('\n').filter((line) => line.length > 0 && !line.startsWith(';'));
}

/** `217; 1259 17050 TABLE public memories brain`: a table's entry, its schema captured. */
const TOC_TABLE = /^\d+; \d+ \d+ TABLE (\S+) /;
/** The entries of the schema itself (`SCHEMA - public …`, `COMMENT - SCHEMA public …`). */
const TOC_SCHEMA = /^\d+; \d+ \d+ (SCHEMA - |COMMENT - SCHEMA )/;

/**
 * Reads every data block of the archive back (`pg_restore --data-only` to a stream, nothing written
 * anywhere) and counts the rows of each table, keeping schema_migrations' versions: a damaged block or
 * a cut file fails pg_restore here.
 */
async function countRows(
  restoreBin: string,
  file: string,
): Promise<{ tables: Record<string, number>; version: number | null }> {
  const run = runTool(restoreBin, ['--data-only', '--file=-', file], process.env);
  const tables: Record<string, number> = {};
  let version: number | null = null;
  let table: string | null = null;
  let versionColumn = -1;
  const lines = readline.createInterface({
    input: run.child.stdout as Readable,
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) {
    if (table === null) {
      const copy = /^COPY (?:"?[^".]+"?\.)?"?([^" ]+)"? \((.*)\) FROM stdin;$/.exec(line);
      if (!copy) continue;
      table = copy[1] as string;
      tables[table] = 0;
      versionColumn =
        table === 'schema_migrations'
          ? (copy[2] as string)
              .split(', ')
              .map((c) => c.replaceAll('"', ''))
              .indexOf('version')
          : -1;
      continue;
    }
    if (line === '\\.') {
      table = null;
      continue;
    }
    tables[table] = (tables[table] ?? 0) + 1;
    if (versionColumn >= 0) {
      const v = Number(line.split('\t')[versionColumn]);
      if (Number.isInteger(v)) version = Math.max(version ?? 0, v);
    }
  }
  await run.done;
  return { tables, version };
}

/**
 * The PostgreSQL side of backups (BackupEngine): `pg_dump --format=custom` of Brain's schema, and a
 * restore that runs in ONE transaction through psql: Brain's current objects move into a schema
 * `brain_old_<time>` (kept, not dropped), the archive is restored in their place, and COMMIT is sent only
 * once pg_restore has produced the whole archive. A failure, a kill of Brain, psql or pg_restore, or a
 * lost connection rolls it all back: the database is never half restored.
 */
export function createPgBackupEngine(settings: PgBackupSettings): BackupEngine {
  const where = redactUrl(settings.databaseUrl as string);
  const dumpBin = () => findPgTool('pg_dump', settings.pgDumpPath);
  const restoreBin = () => findPgTool('pg_restore', settings.pgRestorePath);

  return {
    kind: 'pgdump',
    location: where,
    restoreNeeds: 'maintenance',
    async snapshot(): Promise<Readable> {
      const bin = dumpBin();
      const schema = await currentSchema(settings);
      const { url, env } = pgToolConnection(settings);
      // Uncompressed: the backup module gzips the stream, once.
      const run = runTool(
        bin,
        ['--format=custom', '--compress=0', `--schema=${schema}`, `--dbname=${url}`],
        env,
      );
      // The stream closed early (a full backup disk): pg_dump is stopped, not left blocked on its pipe.
      return guardedStream(run.child.stdout as Readable, run.done, () => run.child.kill('SIGTERM'));
    },
    async inspect(file): Promise<SnapshotInspection> {
      const bin = restoreBin();
      const checks: string[] = [];
      const problems: string[] = [];
      let tables: Record<string, number> = {};
      let version: number | null = null;
      try {
        checks.push(`pg_restore --list: ${(await tocOf(bin, file)).length} archive entries readable`);
        ({ tables, version } = await countRows(bin, file));
        checks.push(`every data block read back: rows counted in ${Object.keys(tables).length} tables`);
        if (version === null) problems.push('it has no schema_migrations rows: not a Brain database');
        else checks.push(`schema version ${version} (this build: ${LATEST})`);
      } catch (error) {
        // pg_restore could not read the archive (cut short, damaged): that is what was found.
        if (!(error instanceof BrainError) || error.details.tool !== 'pg_restore') throw error;
        problems.push(`the archive is not readable: ${error.message}`);
      }
      return { schemaVersion: version ?? 0, latestVersion: LATEST, tables, checks, problems };
    },
    staging: (fallbackDir) => ({ dir: fallbackDir, prefix: 'pgdump.restore' }),
    // Maintenance mode, checked by the caller, is what a PostgreSQL restore needs.
    async assertNotInUse() {},
    async restore(file, stamp): Promise<RestoreSwap> {
      const bin = restoreBin();
      const psql = findPgTool('psql', undefined, path.dirname(bin));
      const schema = await currentSchema(settings);
      const toc = await tocOf(bin, file);
      const dumped = new Set(toc.map((line) => TOC_TABLE.exec(line)?.[1]).filter((s) => s !== undefined));
      if (dumped.size > 0 && !dumped.has(schema))
        throw new BrainError(
          'INVALID_INPUT',
          `file: the backup holds schema ${[...dumped].join(', ')}, and Brain's tables on ${where} are in ${schema}; restore it with the same search_path`,
          { issues: [{ field: 'file', message: 'another schema' }] },
        );
      const aside = `brain_old_${stamp}`;
      // The schema itself exists already; only what is in it is restored.
      const list = partialName(`${file}.list`);
      fs.writeFileSync(list, `${toc.filter((line) => !TOC_SCHEMA.test(line)).join('\n')}\n`);
      try {
        await restoreInOneTransaction({ bin, psql, file, list, schema, aside });
      } finally {
        fs.rmSync(list, { force: true });
      }
      return { aside: `schema ${aside} of ${where}` };
    },
  };

  async function restoreInOneTransaction(job: {
    bin: string;
    psql: string;
    file: string;
    list: string;
    schema: string;
    aside: string;
  }): Promise<void> {
    const { url, env } = pgToolConnection(settings);
    const client = runTool(
      job.psql,
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', `--dbname=${url}`, '-f', '-'],
      env,
      'pipe',
    );
    const stdin = client.child.stdin as NodeJS.WritableStream;
    // psql gone early (an error stopped it): its exit says why, not this pipe.
    stdin.on('error', () => undefined);
    stdin.write(prelude(job.schema, job.aside));
    const archive = runTool(
      job.bin,
      ['--no-owner', '--no-privileges', `--use-list=${job.list}`, '--file=-', job.file],
      process.env,
    );
    archive.child.stdout?.pipe(stdin, { end: false });
    // psql stopped (ON_ERROR_STOP): nothing reads pg_restore's output any more, so it is stopped too.
    client.child.on('close', () => {
      if (archive.child.exitCode === null) archive.child.kill('SIGTERM');
    });
    const produced = await archive.done.then(
      () => true,
      (error: unknown) => error,
    );
    if (produced === true) {
      // Sent only now: psql reaching the end of its input without it rolls everything back.
      stdin.end(`${postlude(job.schema, job.aside)}\nCOMMIT;\n`);
    } else stdin.end();
    await client.done;
    if (produced !== true) throw produced;
  }
}

/** Opens the transaction and moves every Brain object of `schema` (not an extension's) into `aside`. */
function prelude(schema: string, aside: string): string {
  const s = literal(schema);
  const a = literal(aside);
  return `BEGIN;
CREATE SCHEMA ${ident(aside)};
DO $brain$
DECLARE
  stmt text;
  moves text[];
BEGIN
  SELECT coalesce(array_agg(format('ALTER %s %I.%I SET SCHEMA %I',
      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
        WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname, ${a})), '{}')
    INTO moves
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${s} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      -- extension members stay; sequences owned by a column move with their table
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
        AND d.deptype IN ('e', 'a', 'i'));
  FOREACH stmt IN ARRAY moves LOOP EXECUTE stmt; END LOOP;
  SELECT coalesce(array_agg(format('ALTER %s %I.%I(%s) SET SCHEMA %I',
      CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
      n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), ${a})), '{}')
    INTO moves
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = ${s}
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e');
  FOREACH stmt IN ARRAY moves LOOP EXECUTE stmt; END LOOP;
  SELECT coalesce(array_agg(format('ALTER TYPE %I.%I SET SCHEMA %I', n.nspname, t.typname, ${a})), '{}')
    INTO moves
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = ${s} AND t.typtype IN ('e', 'd', 'r', 'm')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e');
  FOREACH stmt IN ARRAY moves LOOP EXECUTE stmt; END LOOP;
END
$brain$;
`;
}

/**
 * Carries maintenance mode over from the data kept aside, so that the servers that wait in it keep
 * refusing writes until the operator has checked the restore and ends it; and gives every tenant a new
 * change token, so that no replica's recall cache serves an answer made from the data before.
 */
function postlude(schema: string, aside: string): string {
  const live = `${ident(schema)}.config`;
  const old = `${ident(aside)}.config`;
  const tokens = `${ident(schema)}.memory_change_versions`;
  return `DO $brain$
BEGIN
  IF to_regclass(${literal(live)}) IS NOT NULL AND to_regclass(${literal(old)}) IS NOT NULL THEN
    DELETE FROM ${live} WHERE key = ${literal(MAINTENANCE_KEY)};
    INSERT INTO ${live} (key, value, updated_at)
      SELECT key, value, updated_at FROM ${old} WHERE key = ${literal(MAINTENANCE_KEY)};
  END IF;
  IF to_regclass(${literal(tokens)}) IS NOT NULL THEN
    ${renewEveryToken(ident(schema))};
  END IF;
END
$brain$;`;
}
