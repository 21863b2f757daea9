import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditFilter, AuditStore } from '../../modules/audit/audit-store.js';

export interface AuditHarness {
  stores: { audit: AuditStore };
  close(): Promise<void>;
}

const at = (minute: number) => `2026-06-01T12:${String(minute).padStart(2, '0')}:00.000Z`;

function event(id: string, minute: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id,
    at: at(minute),
    principal: 'key:k_alice',
    tenantId: 'tenant-a',
    action: 'memory.remember',
    target: `mem_${id}`,
    outcome: 'ok',
    details: {},
    ...over,
  };
}

/** Eight events, appended oldest first: each filter below keeps a different subset. */
const EVENTS: AuditEvent[] = [
  event('e1', 1, { details: { status: 'created', nested: { ids: ['a', 'b'], n: 2 } } }),
  event('e2', 2, { action: 'memory.forget', details: { forgotten: 1, hard: false } }),
  event('e3', 3, { tenantId: 'tenant-b', principal: 'jwt:bob' }),
  event('e4', 4, { action: 'key.create', principal: 'cli:root', target: 'k_1' }),
  event('e5', 5, { action: 'memory.remember', outcome: 'denied', details: { code: 'FORBIDDEN' } }),
  event('e6', 6, { action: 'memory_x.thing', target: null }),
  event('e7', 7, { action: 'memoryXx.thing', outcome: 'error', details: { code: 'INTERNAL' } }),
  event('e8', 8, { action: 'memory', principal: 'token' }),
];

/** The storage contract of the audit log, run unchanged by every driver against a real database. */
export function runAuditStoreContract(
  driver: string,
  open: () => Promise<AuditHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`AuditStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: AuditHarness;
    let audit: AuditStore;
    const ids = async (filter: Partial<AuditFilter>) =>
      (await audit.list({ limit: 100, ...filter })).map((e) => e.id);
    beforeEach(async () => {
      h = await open();
      audit = h.stores.audit;
    });
    afterEach(async () => {
      await h?.close();
    });

    it('appends a batch and lists it newest first, every field as stored', async () => {
      await audit.append([]);
      await audit.append(EVENTS.slice(0, 4));
      await audit.append(EVENTS.slice(4));
      const all = await audit.list({ limit: 100 });
      expect(all).toEqual([...EVENTS].reverse());
      expect(await ids({ limit: 3 })).toEqual(['e8', 'e7', 'e6']);
    });

    it('orders by arrival, not by the time or id an event carries', async () => {
      // A late batch from a replica whose clock is behind: still the newest in the log.
      await audit.append([event('z_first', 9), event('a_second', 1)]);
      expect(await ids({})).toEqual(['a_second', 'z_first']);
    });

    it('narrows by tenant, principal, exact action, outcome and time, each alone and together', async () => {
      await audit.append(EVENTS);
      expect(await ids({ tenantId: 'tenant-b' })).toEqual(['e3']);
      expect(await ids({ principal: 'cli:root' })).toEqual(['e4']);
      expect(await ids({ action: 'memory.forget' })).toEqual(['e2']);
      expect(await ids({ action: 'memory' })).toEqual(['e8']);
      expect(await ids({ outcome: 'denied' })).toEqual(['e5']);
      expect(await ids({ outcome: 'error' })).toEqual(['e7']);
      expect(await ids({ since: at(6) })).toEqual(['e8', 'e7', 'e6']);
      expect(await ids({ until: at(3) })).toEqual(['e2', 'e1']);
      expect(await ids({ since: at(2), until: at(5) })).toEqual(['e4', 'e3', 'e2']);
      expect(
        await ids({
          tenantId: 'tenant-a',
          principal: 'key:k_alice',
          action: 'memory.remember',
          outcome: 'ok',
        }),
      ).toEqual(['e1']);
      expect(await ids({ tenantId: 'tenant-none' })).toEqual([]);
    });

    it('matches every action under a prefix ending in "." and nothing else, "_" being no wildcard', async () => {
      await audit.append(EVENTS);
      expect(await ids({ action: 'memory.' })).toEqual(['e5', 'e3', 'e2', 'e1']);
      expect(await ids({ action: 'key.' })).toEqual(['e4']);
      expect(await ids({ action: 'memory_x.' })).toEqual(['e6']);
      expect(await ids({ action: 'memory.', tenantId: 'tenant-a', outcome: 'ok' })).toEqual(['e2', 'e1']);
      expect(await ids({ action: 'admin.' })).toEqual([]);
    });

    it('pages with before: each page holds the events older than the last one seen', async () => {
      await audit.append(EVENTS);
      const first = await ids({ limit: 3 });
      expect(first).toEqual(['e8', 'e7', 'e6']);
      const second = await ids({ limit: 3, before: first.at(-1) });
      expect(second).toEqual(['e5', 'e4', 'e3']);
      const third = await ids({ limit: 3, before: second.at(-1) });
      expect(third).toEqual(['e2', 'e1']);
      expect(await ids({ limit: 3, before: 'e1' })).toEqual([]);
      // With a filter, the cursor still counts by position in the log.
      expect(await ids({ action: 'memory.', before: 'e3' })).toEqual(['e2', 'e1']);
      expect(await ids({ before: 'no-such-event' })).toEqual([]);
    });

    it('purges the events before a time and says how many', async () => {
      await audit.append(EVENTS);
      expect(await audit.purgeBefore(at(4))).toBe(3);
      expect(await ids({})).toEqual(['e8', 'e7', 'e6', 'e5', 'e4']);
      expect(await audit.purgeBefore(at(4))).toBe(0);
      expect(await audit.purgeBefore(at(59))).toBe(5);
      expect(await ids({})).toEqual([]);
    });
  });
}
