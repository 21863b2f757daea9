import pg from 'pg';
import type { HealthCheck } from '../../core/health.js';
import type { Logger } from '../../core/logger.js';
import type { PgDatabase } from './pg-database.js';

/** How replicas tell each other which tenant changed, so each drops what it caches of that tenant. */
export interface ChangeBus {
  publish(tenantId: string): Promise<void>;
  subscribe(listener: (tenantId: string) => void): () => void;
  /** Whether notices of other replicas' writes reach this one now (no round trip: a connection state). */
  check(): HealthCheck;
  close(): Promise<void>;
}

export const PG_CHANGE_CHANNEL = 'brain_changes';

/**
 * The change bus on PostgreSQL itself: `pg_notify` after a committed write, and one dedicated
 * connection that LISTENs, reconnecting with backoff when it drops (a replica that missed notices while
 * disconnected drops every cache on reconnect). Needs a session-mode connection (not PgBouncer in
 * transaction mode: use BRAIN_REDIS_URL there).
 */
export async function createPgChangeBus(
  db: PgDatabase,
  connectionString: string,
  logger: Logger,
  options: pg.ClientConfig = {},
): Promise<ChangeBus> {
  const listeners = new Set<(tenantId: string) => void>();
  let client: pg.Client | null = null;
  let closed = false;
  let retryMs = 100;
  let timer: NodeJS.Timeout | null = null;
  const emit = (tenantId: string) => {
    for (const listener of listeners) listener(tenantId);
  };
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ ...options, connectionString });
    next.on('notification', (message) => {
      if (message.channel === PG_CHANGE_CHANNEL && message.payload) emit(message.payload);
    });
    next.on('error', () => reconnect());
    next.on('end', () => reconnect());
    await next.connect();
    await next.query(`LISTEN ${PG_CHANGE_CHANNEL}`);
    client = next;
    retryMs = 100;
  };
  const reconnect = () => {
    if (closed || timer) return;
    const old = client;
    client = null;
    old?.end().catch(() => undefined);
    timer = setTimeout(async () => {
      timer = null;
      try {
        await connect();
        // Notices sent while this replica was away are lost: forget every tenant's caches.
        emit('*');
        logger.info({ db: db.where }, 'change bus listening again');
      } catch (error) {
        retryMs = Math.min(retryMs * 2, 5000);
        logger.warn({ db: db.where, err: (error as Error).message }, 'change bus cannot listen; retrying');
        reconnect();
      }
    }, retryMs);
    timer.unref();
  };
  await connect();
  // Notices go out right after the write, coalesced: the tenants changed while one notice is in flight
  // go in the next, one statement for all of them. The writer does not wait for them (listeners receive
  // notices asynchronously anyway), so a write costs no extra round trip.
  const pending = new Set<string>();
  let sending: Promise<void> | null = null;
  const send = () => {
    if (sending || pending.size === 0) return;
    const tenants = [...pending];
    pending.clear();
    sending = db
      .query('SELECT pg_notify($1, t) FROM unnest($2::text[]) AS t', [PG_CHANGE_CHANNEL, tenants], db.primary)
      .then(
        () => undefined,
        (error) =>
          logger.warn({ err: (error as Error).message }, 'could not notify the other replicas of a change'),
      )
      .finally(() => {
        sending = null;
        if (!closed) send();
      });
  };
  return {
    async publish(tenantId) {
      pending.add(tenantId);
      send();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    check() {
      return client
        ? { ok: true, message: "listening for other replicas' changes (LISTEN/NOTIFY)" }
        : { ok: false, message: 'not listening for changes: reconnecting to PostgreSQL' };
    },
    async close() {
      send();
      while (sending) await sending;
      closed = true;
      if (timer) clearTimeout(timer);
      listeners.clear();
      await client?.end().catch(() => undefined);
    },
  };
}
