import { Redis } from 'ioredis';
import type { Logger as PinoLogger } from 'pino';
import type { Logger } from '../core/logger.js';
import { Authenticator } from '../modules/auth/authenticator.js';
import { Policy } from '../modules/auth/policy.js';
import { RateLimits } from '../modules/auth/rate-limits.js';
import type { HttpAccess } from '../surfaces/http/access.js';
import type { Brain } from './build-brain.js';
import { isClusterWorker } from './serve-cluster.js';

/** The HTTP access layer of a Brain and what it holds open (the rate limiter's Redis connection). */
export interface BuiltAccess {
  access: HttpAccess;
  close(): Promise<void>;
}

/**
 * Authentication (static token, API keys in the store, JWTs, OAuth access tokens), policy (scopes,
 * tenant, OPA) and rate limits, from the Brain's settings. With BRAIN_REDIS_URL the limiter's counters
 * live in Redis (shared by replicas, one connection that fails fast so an outage falls back to
 * per-process counters); otherwise in memory.
 */
export function buildHttpAccess(brain: Brain, logger: PinoLogger): BuiltAccess {
  const config = brain.config;
  const log = logger as unknown as Logger;
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 5000,
        retryStrategy: (attempt: number) => Math.min(100 * 2 ** attempt, 5000),
      })
    : null;
  let warned = false;
  redis?.on('error', (error: Error) => {
    if (warned) return;
    warned = true;
    logger.warn(
      { err: error.message },
      'Redis for rate limits unreachable; limits count per process until it is back',
    );
  });
  redis?.on('ready', () => {
    warned = false;
  });
  const authenticator = new Authenticator(config, brain.storage.stores().apiKeys, brain.clock, log);
  const policy = new Policy({
    opa: config.opaEndpoint
      ? {
          endpoint: config.opaEndpoint,
          timeoutMs: config.opaTimeoutMs,
          failClosed: config.opaFailClosed ?? config.nodeEnv === 'production',
        }
      : null,
    logger: log,
  });
  const limits = new RateLimits(config, { redis, cluster: isClusterWorker(), logger: log });
  return {
    access: {
      authenticator,
      policy,
      limits,
      audit: brain.audit,
      adminAllow: config.adminAllow,
      publicUrl: config.publicUrl,
      oauthIssuer: config.oauthIssuer,
    },
    async close() {
      redis?.disconnect();
    },
  };
}
