import { configReportJson, formatConfigReport } from '../config/config-report.js';
import type { BrainConfig } from '../config/config-schema.js';
import { checkPaths, loadConfig, requireValidConfig } from '../config/load-config.js';
import type { CliRuntime, GlobalOptions } from '../surfaces/cli/cli-program.js';
import { cliLogLevel, createAppLogger } from './app-logger.js';
import { brainVersion, buildBrain, migrateDatabase } from './build-brain.js';
import { runMcp } from './run-mcp.js';
import { runServe } from './run-serve.js';

/** The effective config for a command; throws CONFIG_ERROR listing every problem. */
function configFor(global: GlobalOptions): BrainConfig {
  return requireValidConfig(loadConfig({ configPath: global.config }));
}

/** The CLI's link to the composition root: each command loads config and builds what it needs. */
export function createCliRuntime(): CliRuntime {
  return {
    version: brainVersion(),
    async open(global) {
      const config = configFor(global);
      const logger = createAppLogger(cliLogLevel(config.logLevel), 'stderr');
      const brain = await buildBrain(config, { logger, prepareVectors: false });
      return {
        ctx: { services: brain.services, scope: brain.scope, version: brain.version },
        close: () => brain.close(),
      };
    },
    async serve(global, options) {
      const config = configFor(global);
      await runServe(
        { ...config, host: options.host ?? config.host, port: options.port ?? config.port },
        { migrate: options.migrate && config.migrateOnStart },
      );
    },
    async mcp(global, options) {
      const config = configFor(global);
      await runMcp(config, { migrate: options.migrate && config.migrateOnStart });
    },
    async migrate(global) {
      return migrateDatabase(configFor(global));
    },
    checkConfig(global, json) {
      const loaded = loadConfig({ configPath: global.config });
      const problems = [...loaded.problems, ...checkPaths(loaded.config)];
      const text = json
        ? JSON.stringify(configReportJson(loaded, problems), null, 2)
        : formatConfigReport(loaded, problems);
      return { text, ok: problems.length === 0 };
    },
  };
}
