import { Redis } from 'ioredis';
import type { Logger } from '../../core/logger.js';
import type { AuditPublisher } from '../../modules/audit/audit-log.js';
import type { AuditEvent } from '../../modules/audit/audit-store.js';
import { redactUrl } from '../redact-url.js';

/** The Redis Streams audit events are copied to: what was done to data, and everything else. */
export const AUDIT_STREAMS = { operations: 'audit.operations', events: 'audit.events' } as const;

/** How long `/health` waits for Redis to answer a PING. */
const CHECK_TIMEOUT_MS = 2000;

/** Actions on data (memories, sessions, code runs) go to `audit.operations`; keys, admin, auth to `audit.events`. */
const DATA_ACTIONS = ['memory.', 'session.', 'execution.'];

/** The stream an event of this action is added to. */
export function auditStreamOf(action: string): string {
  return DATA_ACTIONS.some((prefix) => action.startsWith(prefix))
    ? AUDIT_STREAMS.operations
    : AUDIT_STREAMS.events;
}

export interface RedisAuditStreamOptions {
  /** BRAIN_AUDIT_STREAM_MAXLEN: each stream is trimmed to about this many entries (`MAXLEN ~`). */
  maxLen: number;
  logger: Logger;
}

/**
 * The entry fields of an event: its columns by their database names, `details` as JSON text, and a
 * missing target as the empty string (a stream field cannot be null).
 */
export function auditStreamFields(e: AuditEvent): string[] {
  return [
    'id',
    e.id,
    'at',
    e.at,
    'principal',
    e.principal,
    'tenant_id',
    e.tenantId,
    'action',
    e.action,
    'target',
    e.target ?? '',
    'outcome',
    e.outcome,
    'details',
    JSON.stringify(e.details),
  ];
}

/**
 * Copies stored audit events to Redis Streams (BRAIN_REDIS_URL) for a SIEM or any consumer group to
 * read. Best effort by design: the database holds the log, so this never fails a start. It connects in
 * the background and reconnects by itself; a publish waits for the connection and fails (the audit log
 * then warns) when Redis stays unreachable, rather than queueing without bound. One pipeline per batch,
 * in order; `MAXLEN ~` trims in whole macro nodes, so a stream holds about, never far above, maxLen.
 */
export function createRedisAuditStream(url: string, options: RedisAuditStreamOptions): AuditPublisher {
  const { logger, maxLen } = options;
  const where = redactUrl(url);
  const client = new Redis(url, {
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    retryStrategy: (attempt: number) => Math.min(100 * 2 ** attempt, 5000),
  });
  let warned = false;
  client.on('error', (error: Error) => {
    if (warned) return;
    warned = true;
    logger.warn({ redis: where, err: error.message }, 'Redis audit stream unreachable; retrying');
  });
  client.on('ready', () => {
    if (warned) logger.info({ redis: where }, 'Redis audit stream connected again');
    warned = false;
  });
  let closed = false;
  return {
    async publish(events) {
      if (closed || events.length === 0) return;
      const pipeline = client.pipeline();
      for (const event of events)
        pipeline.xadd(auditStreamOf(event.action), 'MAXLEN', '~', maxLen, '*', ...auditStreamFields(event));
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    },
    async check() {
      if (closed) return { ok: false, message: `Redis at ${where}: the audit stream is closed` };
      if (client.status !== 'ready')
        return {
          ok: false,
          message: `Redis at ${where} is ${client.status}: audit events wait in the database and rate limits count per process until it is back; it reconnects by itself`,
        };
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer to PING in ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([client.ping(), late]);
        return { ok: true, message: `Redis at ${where} answers (audit streams, shared rate limits)` };
      } catch (error) {
        return { ok: false, message: `Redis at ${where}: ${(error as Error).message}` };
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // QUIT waits for the replies still due; a client that never connected has none to wait for.
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    },
  };
}
