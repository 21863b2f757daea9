import type { BrainConfig } from '../config/config-schema.js';
import type { Logger } from '../core/logger.js';
import type { AuditPublisher } from '../modules/audit/audit-log.js';
import { createRedisAuditStream } from '../storage/redis/redis-audit-stream.js';

/**
 * The audit log's copy to Redis Streams when BRAIN_REDIS_URL is set (trimmed to about
 * BRAIN_AUDIT_STREAM_MAXLEN entries each), or none. Pass it as `publisher` to createAuditLog; closing
 * the audit log closes it.
 */
export function auditPublisherFor(
  config: Pick<BrainConfig, 'redisUrl' | 'auditStreamMaxLen'>,
  logger: Logger,
): AuditPublisher | undefined {
  if (!config.redisUrl) return undefined;
  return createRedisAuditStream(config.redisUrl, { maxLen: config.auditStreamMaxLen, logger });
}
