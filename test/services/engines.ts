/**
 * Which engines a test runs on. Contract and driver suites run on every engine at once; surface and
 * service tests (through openTestBrain) run on BRAIN_TEST_ENGINE (sqlite by default, or postgres).
 */
import { inject } from 'vitest';
import type { StorageEngine } from '../../src/storage/storage.js';
import { createTestDatabase } from './local-postgres.js';

/** The cluster's base URL, or null when PostgreSQL is not installed here (see skipReason). */
export function postgresBaseUrl(): string | null {
  return inject('postgresUrl');
}

export function postgresSkipReason(): string {
  return inject('postgresSkipReason') ?? 'PostgreSQL is not available';
}

export function redisUrl(): string | null {
  return inject('redisUrl');
}

export function redisSkipReason(): string {
  return inject('redisSkipReason') ?? 'Redis is not available';
}

/** A fresh, empty database with pgvector on the run's cluster. Throws when there is no cluster. */
export function newPostgresDatabase(prefix?: string): string {
  const base = postgresBaseUrl();
  if (!base) throw new Error(postgresSkipReason());
  return createTestDatabase(base, prefix);
}

/** The engine of the surface tests: BRAIN_TEST_ENGINE=postgres runs them on the run's cluster. */
export function surfaceEngine(): StorageEngine {
  const chosen = process.env.BRAIN_TEST_ENGINE ?? 'sqlite';
  if (chosen !== 'sqlite' && chosen !== 'postgres')
    throw new Error(`BRAIN_TEST_ENGINE must be sqlite or postgres, not ${chosen}`);
  if (chosen === 'postgres' && !postgresBaseUrl())
    throw new Error(`BRAIN_TEST_ENGINE=postgres but ${postgresSkipReason()}`);
  return chosen;
}

/** Every engine this run can test, with the reason for each it cannot. */
export const ENGINES: StorageEngine[] = ['sqlite', 'postgres'];
