/**
 * Opens a real, migrated Storage on either engine for contract and driver tests: SQLite on a file in a
 * temp dir, PostgreSQL on a fresh database of the run's throwaway cluster. Configured the way `brain`
 * configures it (every setting at its default but the store's location).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, requireValidConfig } from '../../src/config/load-config.js';
import { type Logger, silentLogger } from '../../src/core/logger.js';
import { createStorage } from '../../src/storage/create-storage.js';
import type { Storage, StorageEngine } from '../../src/storage/storage.js';
import { newPostgresDatabase, postgresBaseUrl, postgresSkipReason } from './engines.js';

export interface StorageHarness {
  storage: Storage;
  /** The environment that points a Brain at the same store (BRAIN_HOME or BRAIN_DATABASE_URL). */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Why `engine` cannot be tested in this run, or null when it can. */
export function engineSkipReason(engine: StorageEngine): string | null {
  if (engine === 'postgres' && !postgresBaseUrl()) return postgresSkipReason();
  return null;
}

/** The settings that put a Brain on `engine` in a fresh store, and the home it may write beside it. */
export function storageEnv(engine: StorageEngine, home: string): Record<string, string> {
  return engine === 'postgres'
    ? { BRAIN_HOME: home, BRAIN_DATABASE_URL: newPostgresDatabase() }
    : { BRAIN_HOME: home };
}

export async function openStorage(
  engine: StorageEngine,
  options: {
    env?: Record<string, string>;
    /** Settings over the defaults (e.g. BRAIN_SLOW_QUERY_MS), on the store `env` or a fresh one. */
    settings?: Record<string, string>;
    logger?: Logger;
    migrate?: boolean;
  } = {},
): Promise<StorageHarness> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `brain-${engine}-`));
  const env = { ...(options.env ?? storageEnv(engine, home)), ...options.settings };
  const config = requireValidConfig(
    loadConfig({ env: { LOG_LEVEL: 'silent', ...env, BRAIN_HOME: env.BRAIN_HOME ?? home }, cwd: home }),
  );
  const storage = await createStorage(config, { logger: options.logger ?? silentLogger });
  if (options.migrate !== false) await storage.migrate();
  return {
    storage,
    env,
    async close() {
      await storage.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
