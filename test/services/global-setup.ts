/**
 * Vitest global setup: starts one throwaway PostgreSQL cluster and one Redis for the whole run when they
 * are installed, and says loudly when they are not (their suites then skip, each with the reason).
 * Tests read them through test/services/engines.ts.
 */
import type { TestProject } from 'vitest/node';
import { type LocalPostgres, postgresUnavailable, startLocalPostgres } from './local-postgres.js';
import { type LocalRedis, redisUnavailable, startLocalRedis } from './local-redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string | null;
    postgresSkipReason: string | null;
    redisUrl: string | null;
    redisSkipReason: string | null;
  }
}

function banner(lines: string[]): void {
  const bar = '!'.repeat(78);
  process.stderr.write(`\n${bar}\n${lines.map((l) => `!! ${l}`).join('\n')}\n${bar}\n\n`);
}

export default async function setup(project: TestProject): Promise<() => void> {
  let postgres: LocalPostgres | null = null;
  let redis: LocalRedis | null = null;
  const pgMissing = postgresUnavailable();
  const redisMissing = redisUnavailable();
  if (!pgMissing) postgres = await startLocalPostgres();
  if (!redisMissing) redis = await startLocalRedis();
  project.provide('postgresUrl', postgres?.baseUrl ?? null);
  project.provide('postgresSkipReason', pgMissing);
  project.provide('redisUrl', redis?.url ?? null);
  project.provide('redisSkipReason', redisMissing);
  if (pgMissing || redisMissing)
    banner([
      'SKIPPING the PostgreSQL/Redis suites:',
      ...[pgMissing, redisMissing].filter((m): m is string => m !== null),
      'Enable them with: sudo scripts/install-services.sh  (then npm test starts a throwaway',
      'cluster and Redis on 127.0.0.1 by itself). CI (.ci/run) always installs and runs them.',
    ]);
  return () => {
    postgres?.stop();
    redis?.stop();
  };
}
