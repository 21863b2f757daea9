import type { Clock } from '../../core/clock.js';
import type { HealthCheck } from '../../core/health.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { AuditEvent, AuditStore } from './audit-store.js';

/** Most events one `append` call writes; a larger backlog goes in several, one after the other. */
export const AUDIT_BATCH_MAX = 500;

/** Where stored events are copied to besides the database (Redis Streams), best effort. */
export interface AuditPublisher {
  /** Sends one stored batch, in order. A failure is logged by the caller and changes nothing else. */
  publish(events: AuditEvent[]): Promise<void>;
  /** Whether its destination answers now (`/health`), when it can tell. */
  check?(): Promise<HealthCheck>;
  close(): Promise<void>;
}

/** What a caller records: the id is made here, and the time too unless it is given. */
export type AuditRecord = Omit<AuditEvent, 'id' | 'at'> & { at?: string };

export interface AuditLog {
  /**
   * Stores one event and resolves once it is in the store, so an acknowledged write has its event.
   * Never rejects: a store failure is logged (at error, without the event's details) and resolves.
   */
  record(event: AuditRecord): Promise<void>;
  /**
   * The event `record` would store, made now (id, time, content kept or dropped), for a store that
   * writes it itself in a write's own transaction (WriteAudit); null once the log is closed.
   */
  prepare(event: AuditRecord): AuditEvent | null;
  /** Events a store wrote itself (see prepare) are stored: they go on to the publisher, as recorded ones do. */
  stored(events: AuditEvent[]): void;
  /** Resolves once every event recorded so far is stored (or its failure logged). */
  flush(): Promise<void>;
  /** Flushes, then stops: later records are logged as lost. Closes the publisher. Idempotent. */
  close(): Promise<void>;
}

export interface AuditLogConfig {
  store: AuditStore;
  clock: Clock;
  logger: Logger;
  publisher?: AuditPublisher | undefined;
  /** BRAIN_AUDIT_CONTENT: when false, a `content` in an event's details is dropped before it is stored. */
  includeContent: boolean;
}

interface Pending {
  event: AuditEvent;
  done: () => void;
}

/**
 * The audit log with group commit: every event recorded in the same tick, or while a write is in
 * flight, goes into the next single `append` (one transaction, one fsync, at most AUDIT_BATCH_MAX
 * events), so auditing every write costs a fraction of a write. Each stored batch is then handed to
 * the publisher without waiting for it.
 */
export function createAuditLog(config: AuditLogConfig): AuditLog {
  const { store, clock, logger, publisher, includeContent } = config;
  let pending: Pending[] = [];
  let draining: Promise<void> | null = null;
  let scheduled: NodeJS.Immediate | null = null;
  let closing: Promise<void> | null = null;
  let stopped = false;
  const publishing = new Set<Promise<void>>();

  const publish = (events: AuditEvent[]) => {
    if (!publisher) return;
    const sent = publisher
      .publish(events)
      .catch((error: unknown) =>
        logger.warn({ err: error, events: events.length }, 'could not publish audit events to the stream'),
      )
      .finally(() => publishing.delete(sent));
    publishing.add(sent);
  };

  const write = async (batch: Pending[]) => {
    const events = batch.map((p) => p.event);
    try {
      await store.append(events);
      publish(events);
    } catch (error) {
      // Actions and counts only: details may hold ids a log should not, and content never belongs there.
      const actions = [...new Set(events.map((e) => e.action))];
      logger.error(
        { err: error, events: events.length, actions },
        'could not store audit events; they are lost',
      );
    }
    for (const p of batch) p.done();
  };

  const drain = async () => {
    while (pending.length > 0) {
      const batch = pending.slice(0, AUDIT_BATCH_MAX);
      pending = pending.slice(batch.length);
      await write(batch);
    }
    draining = null;
  };

  /** Starts a drain unless one runs: the running one picks up what arrived meanwhile. */
  const start = () => {
    if (scheduled) {
      clearImmediate(scheduled);
      scheduled = null;
    }
    draining ??= drain();
    return draining;
  };

  const prepare = (input: AuditRecord): AuditEvent => {
    const now = clock.now();
    return {
      id: newId('aud', now.getTime()),
      at: input.at ?? now.toISOString(),
      principal: input.principal,
      tenantId: input.tenantId,
      action: input.action,
      target: input.target,
      outcome: input.outcome,
      details:
        includeContent || !('content' in input.details) ? input.details : withoutContent(input.details),
    };
  };

  const record = (input: AuditRecord): Promise<void> => {
    const event = prepare(input);
    if (stopped) {
      logger.error({ action: event.action, tenant: event.tenantId }, 'audit log closed; an event is lost');
      return Promise.resolve();
    }
    return new Promise<void>((done) => {
      pending.push({ event, done });
      // A write in flight takes this event in its next batch; otherwise wait out the tick for company.
      if (!draining && !scheduled) scheduled = setImmediate(start);
    });
  };

  const flush = async () => {
    if (pending.length > 0 || draining) await start();
  };

  return {
    record,
    prepare: (input) => (stopped ? null : prepare(input)),
    stored: publish,
    flush,
    close() {
      // Events recorded while closing are still stored; only those after the last flush are lost.
      closing ??= (async () => {
        await flush();
        stopped = true;
        await Promise.allSettled([...publishing]);
        await publisher
          ?.close()
          .catch((error: unknown) => logger.warn({ err: error }, 'could not close the audit stream'));
      })();
      return closing;
    },
  };
}

function withoutContent(details: Record<string, unknown>): Record<string, unknown> {
  const { content: _content, ...rest } = details;
  return rest;
}
