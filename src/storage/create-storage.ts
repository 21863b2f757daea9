import type { Logger } from '../core/logger.js';
import { createSqliteStorage, type SqliteStorageOptions } from './sqlite/sqlite-storage.js';
import type { Storage, StorageSettings } from './storage.js';

export type StorageOptions = SqliteStorageOptions;

/**
 * The one place that picks a driver: PostgreSQL when `BRAIN_DATABASE_URL` is set, else the embedded
 * SQLite file. The PostgreSQL driver (and Redis, when `BRAIN_REDIS_URL` is set) is loaded only then.
 */
export async function createStorage(config: StorageSettings, options: StorageOptions): Promise<Storage> {
  if (!config.databaseUrl) return createSqliteStorage(config, options);
  const { createPostgresStorage } = await import('./pg/pg-storage.js');
  const changeBus = config.redisUrl ? await redisBus(config.redisUrl, options.logger) : undefined;
  try {
    return await createPostgresStorage(config, { logger: options.logger, changeBus });
  } catch (error) {
    await changeBus?.close();
    throw error;
  }
}

async function redisBus(url: string, logger: Logger) {
  const { createRedisChangeBus } = await import('./redis/redis-change-bus.js');
  return createRedisChangeBus(url, logger);
}
