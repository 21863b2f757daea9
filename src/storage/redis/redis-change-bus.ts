import { Redis } from 'ioredis';
import { BrainError } from '../../core/errors.js';
import type { HealthCheck } from '../../core/health.js';
import type { Logger } from '../../core/logger.js';

/** The pub/sub channel replicas tell each other of committed writes on (payload: the tenant id). */
export const REDIS_CHANGE_CHANNEL = 'brain:changes';

/** What a change bus does for the PostgreSQL driver's caches; the same shape as its ChangeBus. */
export interface RedisChangeBus {
  publish(tenantId: string): Promise<void>;
  subscribe(listener: (tenantId: string) => void): () => void;
  check(): HealthCheck;
  close(): Promise<void>;
}

/** A URL as logs may show it: without its password. */
function redacted(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '****';
  return parsed.toString();
}

/**
 * Cross-replica invalidation over Redis pub/sub (BRAIN_REDIS_URL): one connection publishes, one
 * subscribes (a subscribed Redis connection can do nothing else). ioredis reconnects with backoff and
 * re-subscribes by itself; a publish while Redis is down fails fast (no offline queue) and is logged,
 * since the write it follows is already committed and the other replicas' caches expire by themselves.
 */
export async function createRedisChangeBus(url: string, logger: Logger): Promise<RedisChangeBus> {
  const options = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    retryStrategy: (attempt: number) => Math.min(100 * 2 ** attempt, 5000),
  };
  const publisher = new Redis(url, options);
  // The subscriber queues its SUBSCRIBE until connected, so it keeps the offline queue.
  const subscriber = new Redis(url, { ...options, enableOfflineQueue: true });
  const where = redacted(url);
  let warned = false;
  for (const client of [publisher, subscriber]) {
    client.on('error', (error: Error) => {
      if (warned) return;
      warned = true;
      logger.warn({ redis: where, err: error.message }, 'Redis change bus unreachable; retrying');
    });
    client.on('ready', () => {
      if (warned) logger.info({ redis: where }, 'Redis change bus connected again');
      warned = false;
    });
  }
  try {
    await Promise.all([publisher.connect(), subscriber.connect()]);
    await subscriber.subscribe(REDIS_CHANGE_CHANNEL);
  } catch (error) {
    publisher.disconnect();
    subscriber.disconnect();
    throw new BrainError(
      'UNAVAILABLE',
      `BRAIN_REDIS_URL: Redis at ${where} is unreachable (${error instanceof Error ? error.message : String(error)}); start it or unset BRAIN_REDIS_URL to use PostgreSQL LISTEN/NOTIFY`,
    );
  }
  const listeners = new Set<(tenantId: string) => void>();
  subscriber.on('message', (channel: string, tenantId: string) => {
    if (channel !== REDIS_CHANGE_CHANNEL) return;
    for (const listener of listeners) listener(tenantId);
  });
  let closed = false;
  return {
    check() {
      const ready = !closed && publisher.status === 'ready' && subscriber.status === 'ready';
      return ready
        ? { ok: true, message: `Redis at ${where} carries change notices` }
        : {
            ok: false,
            message: closed
              ? 'the Redis change bus is closed'
              : `Redis at ${where} is ${publisher.status}; reconnecting by itself`,
          };
    },
    async publish(tenantId) {
      if (closed) return;
      try {
        await publisher.publish(REDIS_CHANGE_CHANNEL, tenantId);
      } catch (error) {
        logger.warn({ redis: where, err: (error as Error).message }, 'could not publish a change');
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
    },
  };
}
