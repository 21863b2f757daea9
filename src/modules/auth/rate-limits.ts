import {
  BurstyRateLimiter,
  type RateLimiterAbstract,
  RateLimiterCluster,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

/** The limits per principal (0 = none), as BRAIN_RATE_RPS, BRAIN_RATE_BURST, BRAIN_WRITE_DAILY_LIMIT. */
export interface RateLimitSettings {
  rateRps: number;
  rateBurst: number;
  writeDailyLimit: number;
}

/** The burst allowance refills over this window: BRAIN_RATE_BURST requests per 10 s above the rate. */
const BURST_WINDOW_S = 10;
const DAY_S = 86_400;

/** Which way a limit was passed, for the metric of rejections. */
export type LimitKind = 'rate' | 'daily_writes';

/**
 * Rate limits per principal, with rate-limiter-flexible: requests per second with a burst, and writes
 * per day. In one process the counters live in memory; in the workers of one `brain serve`, in its
 * primary process (RateLimiterCluster, over the cluster's IPC); with a Redis client (BRAIN_REDIS_URL) they live
 * in Redis, so replicas share them, with an in-memory limiter standing in while Redis is unreachable.
 * A refusal is RATE_LIMITED with `retry_after_seconds` (the HTTP face turns it into 429 + Retry-After).
 */
export class RateLimits {
  readonly #requests: BurstyRateLimiter | RateLimiterAbstract | null;
  readonly #writes: RateLimiterAbstract | null;
  readonly #settings: RateLimitSettings;
  /** Told of every refusal (metrics); the HTTP server sets it once its metrics exist. */
  onReject: (kind: LimitKind) => void;

  constructor(
    settings: RateLimitSettings,
    options: {
      /** An ioredis client (the app layer owns the driver); counters go to Redis. */
      redis?: object | null;
      /** A worker of `brain serve` with BRAIN_WORKERS > 1: counters live in the primary process. */
      cluster?: boolean;
      logger: Logger;
      onReject?: (kind: LimitKind) => void;
    },
  ) {
    this.#settings = settings;
    this.onReject = options.onReject ?? (() => undefined);
    const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract => {
      const memory = options.cluster
        ? new RateLimiterCluster({ keyPrefix, points, duration, timeoutMs: 1000 })
        : new RateLimiterMemory({ keyPrefix, points, duration });
      if (!options.redis) return memory;
      return new RateLimiterRedis({
        storeClient: options.redis,
        keyPrefix: `brain:${keyPrefix}`,
        points,
        duration,
        insuranceLimiter: memory,
      });
    };
    const { rateRps, rateBurst, writeDailyLimit } = settings;
    const perSecond = rateRps > 0 ? make('rl:rps', rateRps, 1) : null;
    this.#requests =
      perSecond && rateBurst > 0
        ? new BurstyRateLimiter(perSecond, make('rl:burst', rateBurst, BURST_WINDOW_S))
        : perSecond;
    this.#writes = writeDailyLimit > 0 ? make('rl:writes', writeDailyLimit, DAY_S) : null;
  }

  /** Counts one request of `principal`; RATE_LIMITED past the rate and its burst. */
  async request(principal: string): Promise<void> {
    if (!this.#requests) return;
    try {
      await this.#requests.consume(principal, 1);
    } catch (error) {
      throw this.#refusal(
        error,
        'rate',
        `more than ${this.#settings.rateRps} requests per second (BRAIN_RATE_RPS)`,
      );
    }
  }

  /** Counts `count` written memories of `principal`; RATE_LIMITED past the daily limit. */
  async writes(principal: string, count: number): Promise<void> {
    if (!this.#writes || count <= 0) return;
    try {
      await this.#writes.consume(principal, count);
    } catch (error) {
      // A refused write writes nothing: its points go back, so a smaller one may still fit.
      if (error instanceof RateLimiterRes) await this.#writes.reward(principal, count).catch(() => undefined);
      throw this.#refusal(
        error,
        'daily_writes',
        `more than ${this.#settings.writeDailyLimit} writes in 24 hours (BRAIN_WRITE_DAILY_LIMIT)`,
      );
    }
  }

  #refusal(error: unknown, kind: LimitKind, what: string): BrainError {
    if (!(error instanceof RateLimiterRes)) {
      // Redis failed and the insurance limiter too: never let a limiter's fault become a 500.
      return new BrainError('UNAVAILABLE', 'rate limits cannot be checked now; retry shortly', {
        retry_after_seconds: 1,
      });
    }
    this.onReject(kind);
    const seconds = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
    return new BrainError('RATE_LIMITED', `rate limit: ${what}; retry in ${seconds} s`, {
      limit: kind,
      retry_after_seconds: seconds,
    });
  }
}
