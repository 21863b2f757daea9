import type { BrainConfig } from '../config/config-schema.js';
import { BrainError } from '../core/errors.js';
import type { CheckpointResult, IntegrityReport, MaintenanceResult } from '../core/integrity.js';
import type { Logger } from '../core/logger.js';
import { createStorage } from '../storage/create-storage.js';
import { recoverSqlite } from '../storage/sqlite/sqlite-recover.js';
import type { Storage } from '../storage/storage.js';
import type { GlobalOptions } from '../surfaces/cli/cli-program.js';
import type { DbRuntime } from '../surfaces/cli/db-commands.js';

/** A command's configuration and its logger (cli-runtime.ts makes them the way every command does). */
export type CommandStart = (global: GlobalOptions) => { config: BrainConfig; logger: Logger };

/** What the scheduled VACUUM/ANALYZE job did. */
export interface VacuumAnalyzeResult {
  vacuum: MaintenanceResult;
  /** SQLite's ANALYZE after the VACUUM; null on PostgreSQL, whose `VACUUM (ANALYZE)` did both. */
  analyze: MaintenanceResult | null;
  seconds: number;
}

/**
 * The scheduler's VACUUM and ANALYZE job (BRAIN_VACUUM_CRON, at most every BRAIN_VACUUM_INTERVAL_HOURS:
 * the scheduler keeps the interval). ANALYZE runs even when VACUUM is refused; a refused VACUUM (not
 * enough free disk) then rejects with STORAGE_FULL so the run is recorded as failed, with the reason.
 */
export async function vacuumAndAnalyze(storage: Storage): Promise<VacuumAnalyzeResult> {
  const started = performance.now();
  const integrity = storage.integrity();
  const vacuum = await integrity.vacuum();
  const analyze = storage.engine === 'postgres' ? null : await integrity.analyze();
  if (!vacuum.ran) throw new BrainError('STORAGE_FULL', vacuum.message, { analyze: analyze?.ran ?? false });
  return { vacuum, analyze, seconds: (performance.now() - started) / 1000 };
}

/**
 * The scheduler's checkpoint job (BRAIN_CHECKPOINT_CRON): SQLite `wal_checkpoint(TRUNCATE)` (a reader
 * may keep part of the log for the next one: `busy`); on PostgreSQL `CHECKPOINT` where the role may,
 * else a result saying PostgreSQL checkpoints by itself (not a failure).
 */
export function checkpoint(storage: Storage): Promise<CheckpointResult> {
  return storage.integrity().checkpoint();
}

/**
 * The start-up check of `brain serve` and `brain mcp` on SQLite: `PRAGMA quick_check` (about 0.2 s per
 * 100,000 memories, docs/OPERATIONS.md), so a damaged file stops the start with one line naming it
 * and `brain db recover`, rather than failing the requests that reach the damaged page. One-shot
 * commands skip it (they fail on the first damaged page they read, with the same advice). Nothing on
 * PostgreSQL, whose own checks (amcheck) are too slow for a start and are `brain db check`'s.
 */
export async function checkAtStart(config: BrainConfig, logger: Logger): Promise<void> {
  if (config.databaseUrl) return;
  const storage = await createStorage(config, { logger });
  try {
    const [check] = (await storage.integrity().check({ quick: true })).checks;
    if (check && check.status === 'fail')
      throw new BrainError(
        'STORAGE_CORRUPT',
        `database file ${config.dbPath} is damaged (quick_check: ${check.message.replace(/^could not run: /, '')}): stop Brain, then run \`brain db recover\` (it copies every readable row into a new file and keeps the damaged one aside), or restore a backup (\`brain restore\`)`,
        { path: config.dbPath },
      );
  } finally {
    await storage.close();
  }
}

async function withStorage<T>(
  config: BrainConfig,
  logger: Logger,
  work: (storage: Storage) => Promise<T>,
): Promise<T> {
  const storage = await createStorage(config, { logger });
  try {
    return await work(storage);
  } finally {
    await storage.close();
  }
}

/** A schema older than this build: the checks would read tables that are not there yet. */
async function schemaLine(storage: Storage): Promise<IntegrityReport['checks']> {
  const { current, latest } = await storage.schema();
  return current < latest
    ? [
        {
          name: 'schema',
          status: 'fail',
          message: `schema version ${current}, this build needs ${latest}`,
          fix: 'brain migrate',
        },
      ]
    : [];
}

/** `brain db …` on the configured store. */
export function dbRuntime(start: CommandStart): DbRuntime {
  return {
    async dbCheck(global, options) {
      const { config, logger } = start(global);
      return withStorage(config, logger, async (storage) => {
        const schema = await schemaLine(storage);
        const report = await storage.integrity().check(options);
        return schema.length > 0 ? { ...report, ok: false, checks: [...schema, ...report.checks] } : report;
      });
    },
    async dbRecover(global, options) {
      const { config } = start(global);
      if (config.databaseUrl)
        throw new BrainError(
          'INVALID_INPUT',
          'brain db recover repairs the SQLite file; on PostgreSQL restore the newest backup (brain restore FILE), or use PostgreSQL’s own tools: brain db check runs amcheck, REINDEX rebuilds a damaged index, pg_dump/pg_restore moves what is readable',
          { issues: [{ field: 'BRAIN_DATABASE_URL', message: 'brain db recover is for SQLite only' }] },
        );
      return recoverSqlite(config.dbPath, {
        busyTimeoutMs: config.busyTimeoutMs,
        cacheSizeMb: config.sqliteCacheMb,
        force: options.force,
      });
    },
    async dbMaintain(global, operation) {
      const { config, logger } = start(global);
      return withStorage(config, logger, (storage) =>
        operation === 'vacuum' ? storage.integrity().vacuum() : storage.integrity().analyze(),
      );
    },
    async dbCheckpoint(global) {
      const { config, logger } = start(global);
      return withStorage(config, logger, (storage) => checkpoint(storage));
    },
    async dbReindex(global, onProgress) {
      const { config, logger } = start(global);
      return withStorage(config, logger, async (storage) => {
        const schema = await storage.schema();
        if (schema.current < schema.latest)
          throw new BrainError(
            'STORAGE_ERROR',
            `database ${storage.location} is at schema version ${schema.current} but this build needs ${schema.latest}: run \`brain migrate\` first`,
          );
        return storage.integrity().reindex(onProgress);
      });
    },
  };
}
