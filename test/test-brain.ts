/**
 * A real Brain for surface tests: a fresh BRAIN_HOME in the temp dir, the configuration loaded the way
 * `brain` loads it (every setting at its default but the home and the log level), on the engine
 * BRAIN_TEST_ENGINE names: SQLite on a file (default), or a fresh database of the run's PostgreSQL
 * cluster (reopening the same home reopens the same database).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type Brain, buildBrain } from '../src/app/build-brain.js';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import type { Clock } from '../src/core/clock.js';
import { newPostgresDatabase, surfaceEngine } from './services/engines.js';

export interface TestBrain {
  brain: Brain;
  home: string;
  /** Closes the Brain and removes its home. */
  close(): Promise<void>;
}

export async function openTestBrain(
  prefix = 'brain-test-',
  options: { logger?: pino.Logger; env?: Record<string, string>; home?: string; clock?: Clock } = {},
): Promise<TestBrain> {
  const home = options.home ?? fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const config = requireValidConfig(
    loadConfig({
      env: { BRAIN_HOME: home, LOG_LEVEL: 'silent', ...engineEnv(home), ...options.env },
      cwd: home,
    }),
  );
  const brain = await buildBrain(config, {
    logger: options.logger ?? pino({ level: 'silent' }),
    migrate: true,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  return {
    brain,
    home,
    async close() {
      await brain.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** The store settings of BRAIN_TEST_ENGINE for this home: its PostgreSQL database is kept beside it. */
export function engineEnv(home: string): Record<string, string> {
  if (surfaceEngine() === 'sqlite') return {};
  const file = path.join(home, 'test-database-url');
  if (!fs.existsSync(file)) fs.writeFileSync(file, newPostgresDatabase());
  return { BRAIN_DATABASE_URL: fs.readFileSync(file, 'utf8') };
}
