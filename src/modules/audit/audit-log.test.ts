import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStorage, type StorageHarness } from '../../../test/services/storage-harness.js';
import { createFixedClock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { AUDIT_BATCH_MAX, type AuditPublisher, type AuditRecord, createAuditLog } from './audit-log.js';
import type { AuditEvent, AuditStore } from './audit-store.js';

/** A fake logger (outer edge) that keeps what was logged, by level. */
function recordingLogger() {
  const lines: { level: string; fields: object; msg?: string }[] = [];
  const logger: Logger = {
    debug: (fields, msg) => lines.push({ level: 'debug', fields, msg }),
    info: (fields, msg) => lines.push({ level: 'info', fields, msg }),
    warn: (fields, msg) => lines.push({ level: 'warn', fields, msg }),
    error: (fields, msg) => lines.push({ level: 'error', fields, msg }),
    child: () => logger,
  };
  return { logger, lines };
}

/** The real store, with each append's size counted and, when `hold` is set, held until released. */
function countingStore(real: AuditStore) {
  const appends: number[] = [];
  let gate: Promise<void> | null = null;
  let release = () => {};
  return {
    appends,
    hold() {
      gate = new Promise((resolve) => {
        release = resolve;
      });
    },
    release: () => release(),
    store: {
      async append(events: AuditEvent[]) {
        appends.push(events.length);
        if (gate) await gate;
        gate = null;
        return real.append(events);
      },
      list: (filter) => real.list(filter),
      purgeBefore: (at) => real.purgeBefore(at),
    } satisfies AuditStore,
  };
}

const clock = createFixedClock('2026-06-01T12:00:00.000Z');

function write(n: number, over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    principal: 'key:k_alice',
    tenantId: 'tenant-a',
    action: 'memory.remember',
    target: `mem_${n}`,
    outcome: 'ok',
    details: { n },
    ...over,
  };
}

describe('audit log', () => {
  let h: StorageHarness;
  let real: AuditStore;
  beforeEach(async () => {
    h = await openStorage('sqlite');
    real = h.storage.stores().audit;
  });
  afterEach(async () => {
    await h?.close();
  });

  it('stores the events recorded in one tick with one append, each record resolving once stored', async () => {
    const counted = countingStore(real);
    const log = createAuditLog({
      store: counted.store,
      clock,
      logger: recordingLogger().logger,
      includeContent: false,
    });
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.record(write(i))));
    expect(counted.appends).toEqual([20]);
    const stored = await real.list({ limit: 100 });
    expect(stored).toHaveLength(20);
    expect(stored.at(-1)).toMatchObject({
      id: expect.stringMatching(/^aud_[0-9a-z]{26}$/),
      at: '2026-06-01T12:00:00.000Z',
      principal: 'key:k_alice',
      tenantId: 'tenant-a',
      action: 'memory.remember',
      target: 'mem_0',
      outcome: 'ok',
      details: { n: 0 },
    });
    await log.close();
  });

  it('puts what arrives while a write is in flight into the next append, at most 500 a call', async () => {
    const counted = countingStore(real);
    const log = createAuditLog({
      store: counted.store,
      clock,
      logger: recordingLogger().logger,
      includeContent: false,
    });
    counted.hold();
    let firstStored = false;
    const first = log.record(write(0)).then(() => {
      firstStored = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(counted.appends).toEqual([1]);
    const later = Array.from({ length: AUDIT_BATCH_MAX * 2 + 3 }, (_, i) => log.record(write(i + 1)));
    await new Promise((r) => setTimeout(r, 20));
    expect(firstStored).toBe(false); // not acknowledged before the store has it
    counted.release();
    await Promise.all([first, ...later]);
    expect(counted.appends).toEqual([1, 500, 500, 3]);
    expect(await real.list({ limit: 2000 })).toHaveLength(1004);
    await log.close();
  });

  it('gives events time-ordered ids and keeps a time it is given', async () => {
    const ticking = createFixedClock('2026-06-01T12:00:00.000Z');
    const log = createAuditLog({
      store: real,
      clock: ticking,
      logger: recordingLogger().logger,
      includeContent: false,
    });
    await log.record(write(1));
    ticking.advance(5);
    await log.record(write(2, { at: '2026-05-31T00:00:00.000Z' }));
    const [newer, older] = await real.list({ limit: 10 });
    expect((newer?.id ?? '') > (older?.id ?? '')).toBe(true);
    expect(newer?.at).toBe('2026-05-31T00:00:00.000Z');
    await log.close();
  });

  it('resolves when the store fails, logging the failure at error without the details', async () => {
    const { logger, lines } = recordingLogger();
    const log = createAuditLog({ store: real, clock, logger, includeContent: false });
    await h.storage.close(); // a real failure: the database is closed under the log
    const outcomes = await Promise.allSettled([
      log.record(write(1, { details: { secret: 'SENTINEL-DETAIL' } })),
      log.record(write(2, { action: 'key.create' })),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(/could not store audit events/);
    expect(errors[0]?.fields).toMatchObject({ events: 2, actions: ['memory.remember', 'key.create'] });
    expect(JSON.stringify(errors[0]?.fields)).not.toContain('SENTINEL-DETAIL');
    await log.close();
  });

  it('close stores what is still pending, then stops', async () => {
    const { logger, lines } = recordingLogger();
    const log = createAuditLog({ store: real, clock, logger, includeContent: false });
    void log.record(write(1));
    void log.record(write(2));
    await log.close();
    expect((await real.list({ limit: 10 })).map((e) => e.target)).toEqual(['mem_2', 'mem_1']);
    await log.record(write(3));
    expect(await real.list({ limit: 10 })).toHaveLength(2);
    expect(lines.some((l) => l.level === 'error' && /closed/.test(l.msg ?? ''))).toBe(true);
    await log.close(); // idempotent
  });

  it('prepares an event for a store to write itself, as record would store it, and publishes it once stored', async () => {
    const published: string[][] = [];
    const publisher: AuditPublisher = {
      publish: async (events) => {
        published.push(events.map((e) => e.target ?? ''));
      },
      close: async () => {},
    };
    const log = createAuditLog({
      store: real,
      clock,
      logger: recordingLogger().logger,
      publisher,
      includeContent: false,
    });
    const event = log.prepare(write(7, { details: { n: 7, content: 'SENTINEL-CONTENT' } }));
    expect(event).toMatchObject({
      at: '2026-06-01T12:00:00.000Z',
      principal: 'key:k_alice',
      target: 'mem_7',
      details: { n: 7 },
    });
    expect(event?.id).toMatch(/^aud_/);
    expect(JSON.stringify(event)).not.toContain('SENTINEL-CONTENT');
    // Preparing stores nothing; the store that writes it says so, and the publisher gets it.
    expect(await real.list({ limit: 10 })).toEqual([]);
    log.stored([event as AuditEvent]);
    await new Promise((r) => setTimeout(r, 5));
    expect(published).toEqual([['mem_7']]);
    await log.close();
    expect(log.prepare(write(8))).toBeNull();
  });

  it('flush waits for every event recorded so far', async () => {
    const log = createAuditLog({
      store: real,
      clock,
      logger: recordingLogger().logger,
      includeContent: false,
    });
    void log.record(write(1));
    await log.flush();
    expect(await real.list({ limit: 10 })).toHaveLength(1);
    await log.flush(); // nothing pending
    await log.close();
  });

  it('keeps memory content in details only with includeContent', async () => {
    const off = createAuditLog({
      store: real,
      clock,
      logger: recordingLogger().logger,
      includeContent: false,
    });
    await off.record(write(1, { details: { content: 'the secret plan', status: 'created' } }));
    const on = createAuditLog({ store: real, clock, logger: recordingLogger().logger, includeContent: true });
    await on.record(write(2, { details: { content: 'kept', status: 'created' } }));
    const [kept, dropped] = await real.list({ limit: 10 });
    expect(dropped?.details).toEqual({ status: 'created' });
    expect(kept?.details).toEqual({ content: 'kept', status: 'created' });
    await Promise.all([off.close(), on.close()]);
  });

  it('hands each stored batch to the publisher without waiting for it, and logs its failures at warn', async () => {
    const { logger, lines } = recordingLogger();
    const batches: string[][] = [];
    let unblock = () => {};
    let closedPublisher = false;
    // A fake publisher (the outer edge: a stream that hangs on its first batch and fails its second).
    const publisher: AuditPublisher = {
      publish(events) {
        batches.push(events.map((e) => e.target ?? ''));
        if (batches.length === 1) return new Promise((resolve) => (unblock = resolve));
        return Promise.reject(new Error('stream down'));
      },
      close: async () => {
        closedPublisher = true;
      },
    };
    const log = createAuditLog({ store: real, clock, logger, publisher, includeContent: false });
    await Promise.all([log.record(write(1)), log.record(write(2))]); // resolves while publish hangs
    await log.record(write(3)); // its publish fails: still resolves
    await new Promise((r) => setTimeout(r, 10));
    expect(batches).toEqual([['mem_1', 'mem_2'], ['mem_3']]);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'could not publish audit events to the stream',
    ]);
    expect(await real.list({ limit: 10 })).toHaveLength(3);
    const closing = log.close();
    unblock();
    await closing;
    expect(closedPublisher).toBe(true);
  });
});
