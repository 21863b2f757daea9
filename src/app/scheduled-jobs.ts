import type { BrainConfig } from '../config/config-schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { takeBackup } from '../modules/backup/backup-service.js';
import type { EpisodeService } from '../modules/episodes/episode-service.js';
import type { JobDefinition } from '../modules/jobs/scheduler.js';
import { rebalanceMessage, type TierService } from '../modules/memory/tier-service.js';
import { createBackupEngine } from '../storage/create-backup-engine.js';
import type { Storage } from '../storage/storage.js';

/** Runs older than this are deleted by the `expire` job (the history `brain jobs` shows). */
export const JOB_HISTORY_DAYS = 90;
const DAY_MS = 86_400_000;
/** The ttl job purges expired memories this many per transaction, and at most TTL_PURGE_MAX a run. */
const TTL_BATCH = 1000;
export const TTL_PURGE_MAX = 100_000;
/** Idle sessions the sessions job ends a run at most (the next run takes the rest). */
const SESSIONS_PER_RUN = 1000;

/** What the jobs need from a running Brain (kept narrow so the CLI can build them too). */
export interface JobDependencies {
  config: BrainConfig;
  storage: Storage;
  clock: Clock;
  logger: Logger;
  /** Tiers and decay, for the rebalance and decay jobs. */
  tiers: TierService;
  /** The episodic buffer, for the sessions job (ending idle sessions consolidates their buffers). */
  episodes: EpisodeService;
}

/**
 * Every recurring job of the server, with its cron expression from config. Later modules (tiers,
 * decay, sessions) add theirs here.
 */
export function scheduledJobs(deps: JobDependencies): JobDefinition[] {
  const { config, storage, clock, logger, tiers, episodes } = deps;
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
    {
      name: 'rebalance',
      cron: config.rebalanceCron,
      description: `re-scores every memory and keeps each tenant's hot tier within ${config.hotMax} (BRAIN_HOT_MAX); warm memories unused ${config.coldAfterDays} days go cold`,
      async run() {
        return { message: rebalanceMessage(await tiers.rebalance()) };
      },
    },
    {
      name: 'ttl',
      cron: config.ttlCron,
      description: `purges memories whose expires_at (ttl_seconds) has passed, at most ${TTL_PURGE_MAX.toLocaleString('en')} a run, and executions finished more than BRAIN_EXECUTION_RETENTION_DAYS ago`,
      async run() {
        const stores = storage.stores();
        const now = clock.now().toISOString();
        const executions =
          config.executionRetentionDays > 0
            ? await stores.executions.prune(
                new Date(clock.now().getTime() - config.executionRetentionDays * 86_400_000).toISOString(),
              )
            : 0;
        const ran = executions > 0 ? `; ${executions} finished executions past retention deleted` : '';
        let purged = 0;
        let tenants = 0;
        for (const tenantId of await stores.tiers.tenants()) {
          let n = 0;
          // In batches, each its own transaction: writers wait for one batch at most.
          for (;;) {
            const ids = await stores.memories.forget(
              { tenantId, principal: 'job:ttl' },
              { expired: true, limit: TTL_BATCH },
              { hard: true, now },
            );
            n += ids.length;
            if (ids.length < TTL_BATCH || purged + n >= TTL_PURGE_MAX) break;
          }
          purged += n;
          if (n > 0) tenants++;
          if (purged >= TTL_PURGE_MAX) break;
        }
        if (purged === 0 && executions === 0)
          return { outcome: 'skipped', message: 'no memory had expired, no execution was past retention' };
        return { message: `${purged} expired memories of ${tenants} tenants purged${ran}` };
      },
    },
    {
      name: 'sessions',
      cron: config.sessionCleanupCron,
      description: `ends sessions idle ${config.sessionIdleHours} h (BRAIN_SESSION_IDLE_HOURS): their episodic buffers are consolidated`,
      async run() {
        const before = new Date(clock.now().getTime() - config.sessionIdleHours * 3_600_000).toISOString();
        const idle = await storage.stores().episodes.idleSessions(before, SESSIONS_PER_RUN);
        if (idle.length === 0) return { outcome: 'skipped', message: 'no idle session held episodes' };
        let consolidated = 0;
        let evicted = 0;
        for (const { tenantId, sessionId } of idle) {
          // As end_session would: idempotent, so a run cut short and run again ends each session once.
          const r = await episodes.end({ tenantId, principal: 'job:sessions' }, { session_id: sessionId });
          consolidated += r.consolidated.length;
          evicted += r.evicted;
        }
        return {
          message: `${idle.length} idle sessions ended: ${evicted} episodes left their buffers, ${consolidated} kept as memories`,
        };
      },
    },
    {
      name: 'decay',
      cron: config.decayCron,
      description: "recomputes every memory_score (recency decays with each type's half-life); moves nothing",
      async run() {
        const r = await tiers.rebalance({ moves: false });
        return {
          message: `${r.rescored} of ${r.memories} memories of ${r.tenants} tenants re-scored in ${r.seconds.toFixed(2)} s`,
        };
      },
    },
  ];
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
