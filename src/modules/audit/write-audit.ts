import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestScope } from '../../core/scope.js';
import type { WriteOutcome } from '../memory/memory-store.js';
import type { AuditEvent } from './audit-store.js';

/**
 * The audit event of a memory write in progress, offered to the store so that it can write the event
 * in the write's own transaction: one commit for both instead of a second for the event. A store that
 * does not take it leaves the event to the audit log, which stores it after the write (auditedCall).
 */
export interface WriteAudit {
  /**
   * The events to store with the insert of `scope` that ended with `outcomes`, inside its transaction:
   * the call's one event the first time, none after (a second insert, another tenant's, or a write
   * started after the call returned).
   */
  take(scope: RequestScope, outcomes: readonly WriteOutcome[]): AuditEvent[];
  /** The transaction that held what {@link take} returned has committed. */
  committed(): void;
  /** What {@link take} returned was not written (the statement wrote nothing): the next insert takes it. */
  release(): void;
}

/** The audited write whose work is running now, followed through its awaits. */
const writes = new AsyncLocalStorage<WriteAudit>();

/** Runs `call` with `audit` offered to every memory insert it makes (see {@link currentWriteAudit}). */
export function runWithWriteAudit<T>(audit: WriteAudit, call: () => Promise<T>): Promise<T> {
  return writes.run(audit, call);
}

/** The audited write the running code is part of, if any: read by a store before its transaction. */
export function currentWriteAudit(): WriteAudit | undefined {
  return writes.getStore();
}
