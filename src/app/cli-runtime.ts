import os from 'node:os';
import type pino from 'pino';
import { checkPaths } from '../config/check-paths.js';
import { configReportJson, formatConfigReport } from '../config/config-report.js';
import { type BrainConfig, EMBEDDERS, type SettingKey } from '../config/config-schema.js';
import {
  type ConfigProblem,
  type LoadedConfig,
  loadConfig,
  requireValidConfig,
  settingsUsedBy,
  startupWarnings,
} from '../config/load-config.js';
import { BrainError, invalidInput } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { maintenanceEvent, rebalanceEvent } from '../modules/audit/admin-events.js';
import type { RebalanceReport, TierService } from '../modules/memory/tier-service.js';
import type { BrainStatus, CliRuntime, GlobalOptions } from '../surfaces/cli/cli-program.js';
import { type AppLogger, cliLogLevel, createAppLogger, type LogStream } from './app-logger.js';
import { type Brain, brainVersion, buildBrain, migrateDatabase } from './build-brain.js';
import { dailyReport } from './daily-report.js';
import { runDoctor } from './doctor.js';
import { backupRuntime } from './run-backup.js';
import { checkAtStart, dbRuntime } from './run-db.js';
import { runEval } from './run-eval.js';
import { jobsRuntime } from './run-jobs.js';
import { cliPrincipal, keysRuntime } from './run-keys.js';
import { runMcp } from './run-mcp.js';
import { runServe } from './run-serve.js';
import { transferRuntime } from './run-transfer.js';
import { isClusterWorker, runServeCluster } from './serve-cluster.js';
import { DRAIN_TIMEOUT_MS, drain, waitForShutdown } from './shutdown.js';
import { copyStore } from './store-copy.js';

function load(global: GlobalOptions): LoadedConfig {
  return loadConfig({ configPath: global.config, envFile: global.envFile });
}

/** What a command starts with: its config, and the warnings to log once its logger exists. */
interface StartConfig {
  config: BrainConfig;
  warnings: ConfigProblem[];
}

/**
 * The effective config for a command that reads the settings in `uses`. Throws CONFIG_ERROR listing
 * every problem in those settings; a problem in a setting it does not use becomes a startup warning.
 */
function configFor(global: GlobalOptions, uses: ReadonlySet<SettingKey>): StartConfig {
  const loaded = load(global);
  return { config: requireValidConfig(loaded, uses), warnings: startupWarnings(loaded, uses) };
}

/** Logs the configuration's warnings at start, so that a client's log (stderr under MCP) shows them. */
function logConfigWarnings(logger: pino.Logger, warnings: readonly ConfigProblem[]): void {
  for (const w of warnings) logger.warn({ setting: w.setting, source: w.source }, `config: ${w.message}`);
}

/** A command's logger at `level`, writing the configured log files (BRAIN_LOG_PATH) too. */
function loggerFor(config: BrainConfig, stream: LogStream, level: string = config.logLevel): AppLogger {
  return createAppLogger({ level, stream, logPath: config.logPath });
}

function warnAtStart(start: StartConfig, stream: LogStream, level: string = start.config.logLevel): void {
  if (start.warnings.length === 0) return;
  const logger = loggerFor(start.config, stream, level);
  logConfigWarnings(logger, start.warnings);
  // A logger for these lines only: its files are closed once they are written, not left to the GC.
  void logger.closeFiles();
}

async function brainStatus(brain: Brain): Promise<BrainStatus> {
  const { total } = await brain.services.memory.list(brain.scope, { limit: 1 });
  return {
    version: brain.version,
    database: `${brain.storage.engine} ${brain.storage.location}`,
    memories: total,
    embeddings: await brain.embeddings(),
  };
}

/**
 * A Brain for one CLI command: its settings, warnings on stderr, no background vector build, and the
 * embedding queue only when the command is there to drain it (a one-shot write leaves its vectors
 * queued in the database for the server).
 */
async function openForCommand(
  global: GlobalOptions,
  options: {
    embedQueue: boolean;
    workers?: { min: number; max: number };
    workerName?: string;
    /** A long-running process (`brain worker`): logs at LOG_LEVEL to stdout, as `brain serve` does. */
    service?: boolean;
  },
): Promise<Brain> {
  const start = configFor(global, settingsUsedBy('cli'));
  const logger = options.service
    ? loggerFor(start.config, 'stdout')
    : loggerFor(start.config, 'stderr', cliLogLevel(start.config.logLevel));
  logConfigWarnings(logger, start.warnings);
  const config = options.workers
    ? { ...start.config, workerMin: options.workers.min, workerMax: options.workers.max }
    : start.config;
  return buildBrain(config, {
    logger,
    prepareVectors: false,
    embedQueue: options.embedQueue,
    ...(options.workerName ? { workerName: options.workerName } : {}),
  });
}

/**
 * The tier service of a CLI command, whose `brain rebalance` is audited as `POST /admin/rebalance-memory`
 * is (an admin action), by the account that ran it, and is a run of the `rebalance` job done now
 * (TierService.rebalanceNow).
 */
function auditedCliTiers(brain: Brain): TierService {
  const tiers = brain.services.tiers;
  const audited = async (report: RebalanceReport, tenant: string | undefined) => {
    await brain.audit.record(
      rebalanceEvent(cliPrincipal(), tenant ?? brain.config.defaultTenant, tenant, report),
    );
    return report;
  };
  return {
    explain: (scope, id) => tiers.explain(scope, id),
    utilisation: () => tiers.utilisation(),
    // The decay (moves: false) re-scores only, as its job does; a rebalance is one done now.
    rebalance: async (options = {}) =>
      audited(
        options.moves === false
          ? await tiers.rebalance(options)
          : await tiers.rebalanceNow(options, cliPrincipal()),
        options.tenant,
      ),
    rebalanceNow: async (options, by) => audited(await tiers.rebalanceNow(options, by), options.tenant),
  };
}

/** Runs `work` on a Brain opened for one command, and always closes it. */
async function withBrain<T>(
  global: GlobalOptions,
  options: { embedQueue: boolean },
  work: (brain: Brain) => Promise<T>,
): Promise<T> {
  const brain = await openForCommand(global, options);
  try {
    return await work(brain);
  } finally {
    await brain.close();
  }
}

/** The CLI's link to the composition root: each command loads config and builds what it needs. */
export function createCliRuntime(): CliRuntime {
  return {
    version: brainVersion(),
    async open(global) {
      const brain = await openForCommand(global, { embedQueue: false });
      return {
        ctx: {
          services: { ...brain.services, tiers: auditedCliTiers(brain) },
          scope: brain.scope,
          version: brain.version,
        },
        close: () => brain.close(),
      };
    },
    async openForExec(global, options) {
      // A waiting `brain exec` runs its code itself: one worker of its own, whatever BRAIN_WORKER_MIN says.
      const brain = await openForCommand(global, {
        embedQueue: false,
        ...(options.workers ? { workers: { min: 1, max: 1 } } : {}),
      });
      if (options.workers) brain.startExecutionWorkers();
      return {
        ctx: { services: brain.services, scope: brain.scope, version: brain.version },
        close: () => brain.close(),
      };
    },
    async worker(global, options) {
      const brain = await openForCommand(global, {
        embedQueue: false,
        workers: { min: options.concurrency, max: options.concurrency },
        service: true,
        workerName: `${os.hostname()}:${options.id !== undefined ? `worker-${options.id}` : process.pid}`,
      });
      const problem = brain.executionProblem();
      if (problem) {
        await brain.close();
        throw new BrainError('UNAVAILABLE', `brain worker cannot run code here: ${problem}`);
      }
      brain.startExecutionWorkers();
      brain.logger.info(
        { workers: options.concurrency, db: `${brain.storage.engine} ${brain.storage.location}` },
        'brain worker is running',
      );
      const signal = await waitForShutdown(brain.logger);
      brain.logger.info({ signal }, 'worker stopping: finishing the runs in progress');
      await drain(brain.logger, [() => brain.executions.stop(DRAIN_TIMEOUT_MS), () => brain.close()]);
    },
    async serve(global, options) {
      // A setting given on the command line is not read from the configuration, so a bad one there only warns.
      const uses = new Set(settingsUsedBy('serve'));
      if (options.host !== undefined) uses.delete('host');
      if (options.port !== undefined) uses.delete('port');
      const start = configFor(global, uses);
      warnAtStart(start, 'stdout');
      const config = {
        ...start.config,
        host: options.host ?? start.config.host,
        port: options.port ?? start.config.port,
      };
      const migrate = options.migrate && config.migrateOnStart;
      // A damaged file stops the start here, with one line and `brain db recover` (once, in the primary).
      if (!isClusterWorker()) await checkAtStart(config, silentLogger);
      if (config.workers > 1 && !isClusterWorker()) {
        // The primary only forks and waits; each worker runs the server (and finds the schema current).
        const logger = loggerFor(config, 'stdout');
        await runServeCluster(config, { migrate, workers: config.workers, logger });
        return;
      }
      await runServe(config, { migrate: migrate && !isClusterWorker() });
    },
    async mcp(global, options) {
      const start = configFor(global, settingsUsedBy('mcp'));
      warnAtStart(start, 'stderr');
      await checkAtStart(start.config, silentLogger);
      await runMcp(start.config, { migrate: options.migrate && start.config.migrateOnStart });
    },
    async migrate(global) {
      const start = configFor(global, settingsUsedBy('cli'));
      warnAtStart(start, 'stderr', cliLogLevel(start.config.logLevel));
      const logger = loggerFor(start.config, 'stderr', cliLogLevel(start.config.logLevel));
      return migrateDatabase(start.config, logger as unknown as Logger);
    },
    async storeCopy(global, options, onProgress) {
      const start = configFor(global, settingsUsedBy('cli'));
      const logger = loggerFor(start.config, 'stderr', cliLogLevel(start.config.logLevel));
      return copyStore(start.config, {
        ...options,
        cwd: process.cwd(),
        logger: logger as unknown as Logger,
        onProgress,
      });
    },
    status: (global) => withBrain(global, { embedQueue: false }, brainStatus),
    slowQueries: (global, { limit }) =>
      withBrain(global, { embedQueue: false }, async (brain) => {
        const rows = await brain.storage.stores().queryLog.list({ limit, order: 'slowest' });
        return {
          threshold_ms: brain.config.slowQueryMs,
          queries: rows.map((r) => ({ sql: r.sql, elapsed_ms: r.elapsedMs, created_at: r.createdAt })),
        };
      }),
    ...keysRuntime((global, work) => withBrain(global, { embedQueue: false }, work)),
    ...dbRuntime((global) => {
      const start = configFor(global, settingsUsedBy('cli'));
      const logger = loggerFor(start.config, 'stderr', cliLogLevel(start.config.logLevel));
      logConfigWarnings(logger, start.warnings);
      return { config: start.config, logger: logger as unknown as Logger };
    }),
    // Doctor reports every config problem as its own line instead of refusing to run on one.
    doctor: (global) => runDoctor(load(global)),
    dailyReport: (global) => dailyReport(configFor(global, settingsUsedBy('cli')).config),
    ...backupRuntime((global) => {
      const start = configFor(global, settingsUsedBy('cli'));
      const logger = loggerFor(start.config, 'stderr', cliLogLevel(start.config.logLevel));
      logConfigWarnings(logger, start.warnings);
      return { config: start.config, logger: logger as unknown as Logger };
    }),
    ...jobsRuntime((global, work) => withBrain(global, { embedQueue: false }, work)),
    ...transferRuntime((global) => {
      const start = configFor(global, settingsUsedBy('cli'));
      const logger = loggerFor(start.config, 'stderr', cliLogLevel(start.config.logLevel));
      logConfigWarnings(logger, start.warnings);
      return { config: start.config, logger: logger as unknown as Logger };
    }),
    maintenance: (global, change) =>
      withBrain(global, { embedQueue: false }, async (brain) => {
        if (!change) return brain.maintenance.state();
        const state = await brain.maintenance.set(change.on, change.reason);
        // As the admin route records it: an admin action, by the account that ran the command.
        await brain.audit.record(maintenanceEvent(cliPrincipal(), brain.config.defaultTenant, change));
        return state;
      }),
    reembed: (global, onProgress) =>
      withBrain(global, { embedQueue: true }, async (brain) => {
        const total = (await brain.embeddings()).queue?.backlog ?? 0;
        const timer = setInterval(() => {
          void brain.embeddings().then((e) => onProgress(total - (e.queue?.backlog ?? 0), total));
        }, 250);
        try {
          await brain.settle();
        } finally {
          clearInterval(timer);
        }
        onProgress(total, total);
        return brainStatus(brain);
      }),
    async evaluate(global, options) {
      const start = configFor(global, settingsUsedBy('cli'));
      warnAtStart(start, 'stderr', cliLogLevel(start.config.logLevel));
      let embedder = start.config.embedder;
      if (options.embedder !== undefined) {
        if (!(EMBEDDERS as readonly string[]).includes(options.embedder))
          throw invalidInput(
            'embedder',
            `must be one of ${EMBEDDERS.join(', ')}; got ${JSON.stringify(options.embedder)}`,
          );
        embedder = options.embedder as BrainConfig['embedder'];
      }
      const report = await runEval(start.config, { ...options, embedder });
      return { report, embedder };
    },
    checkConfig(global, json) {
      const loaded = load(global);
      const problems = [...loaded.problems, ...checkPaths(loaded.config)];
      const text = json
        ? JSON.stringify(configReportJson(loaded, problems), null, 2)
        : formatConfigReport(loaded, problems);
      return { text, ok: problems.length === 0 };
    },
  };
}
