import type { BrainConfig } from '../config/config-schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { takeBackup } from '../modules/backup/backup-service.js';
import type { JobDefinition } from '../modules/jobs/scheduler.js';
import { createBackupEngine } from '../storage/create-backup-engine.js';
import type { Storage } from '../storage/storage.js';

/** Runs older than this are deleted by the `expire` job (the history `brain jobs` shows). */
export const JOB_HISTORY_DAYS = 90;
const DAY_MS = 86_400_000;

/** What the jobs need from a running Brain (kept narrow so the CLI can build them too). */
export interface JobDependencies {
  config: BrainConfig;
  storage: Storage;
  clock: Clock;
  logger: Logger;
}

/**
 * Every recurring job of the server, with its cron expression from config. Later modules (tiers,
 * decay, sessions) add theirs here.
 */
export function scheduledJobs(deps: JobDependencies): JobDefinition[] {
  const { config, storage, clock, logger } = deps;
  return [
    {
      name: 'backup',
      cron: config.backupCron,
      description: `an online backup into ${config.backupPath}, then the retention${config.backupHook ? ', then BRAIN_BACKUP_HOOK' : ''}`,
      async run() {
        // The same work as `brain backup`: a failure (full disk, pg_dump missing, the hook) is retried.
        const result = await takeBackup(await createBackupEngine(config), config, { clock, logger });
        const removed = result.removed.length > 0 ? `, ${result.removed.length} old ones removed` : '';
        return {
          message: `${result.name} (${mib(result.bytes)}) in ${result.seconds.toFixed(1)} s${removed}`,
        };
      },
    },
    {
      name: 'vacuum',
      cron: config.vacuumCron,
      description: `VACUUM and ANALYZE, at most every ${config.vacuumIntervalHours} h (BRAIN_VACUUM_INTERVAL_HOURS)`,
      async run({ trigger }) {
        if (config.vacuumIntervalHours === 0 && trigger === 'schedule')
          return {
            outcome: 'skipped',
            message: 'BRAIN_VACUUM_INTERVAL_HOURS is 0: scheduled vacuums are off',
          };
        if (trigger === 'schedule') {
          const last = (await storage.stores().jobs.history()).find((h) => h.job === 'vacuum')?.lastSuccess;
          const since = last ? clock.now().getTime() - Date.parse(last.finishedAt) : Number.POSITIVE_INFINITY;
          // A little slack: a daily cron fires a few seconds short of 24 h after the last run finished.
          if (since < config.vacuumIntervalHours * 3_600_000 - 600_000)
            return {
              outcome: 'skipped',
              message: `last vacuum ${Math.round(since / 3_600_000)} h ago, under BRAIN_VACUUM_INTERVAL_HOURS (${config.vacuumIntervalHours})`,
            };
        }
        const integrity = storage.integrity();
        const vacuum = await integrity.vacuum();
        const analyze = await integrity.analyze();
        if (!vacuum.ran)
          return { outcome: 'skipped', message: `vacuum: ${vacuum.message}; analyze: ${analyze.message}` };
        return {
          message: `vacuum: ${vacuum.message} (${mib(vacuum.bytesBefore)} → ${mib(vacuum.bytesAfter)}); analyze: ${analyze.message}`,
        };
      },
    },
    {
      name: 'checkpoint',
      cron: config.checkpointCron,
      description: 'a WAL checkpoint (TRUNCATE) on SQLite; nothing to do on PostgreSQL',
      async run() {
        if (storage.engine !== 'sqlite')
          return { outcome: 'skipped', message: 'PostgreSQL checkpoints by itself' };
        const result = await storage.integrity().checkpoint();
        return { outcome: result.ran ? 'succeeded' : 'skipped', message: result.message };
      },
    },
    {
      name: 'expire',
      cron: config.expireCron,
      description: `deletes expired idempotency keys, and job runs older than ${JOB_HISTORY_DAYS} days`,
      async run() {
        const now = clock.now();
        const stores = storage.stores();
        const keys = await stores.idempotency.purgeExpired(now.toISOString());
        const runs = await stores.jobs.pruneRuns(
          new Date(now.getTime() - JOB_HISTORY_DAYS * DAY_MS).toISOString(),
        );
        return { message: `${keys} idempotency keys, ${runs} job runs deleted` };
      },
    },
  ];
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
