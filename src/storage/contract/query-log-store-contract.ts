import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QueryLogStore, SlowQuery } from '../../modules/observability/query-log-store.js';

export interface QueryLogHarness {
  stores: { queryLog: QueryLogStore };
  close(): Promise<void>;
}

const row = (sql: string, elapsedMs: number, createdAt: string): SlowQuery => ({ sql, elapsedMs, createdAt });

const OLD = row('SELECT old FROM memories', 900.5, '2026-05-01T00:00:00.000Z');
const SLOWEST = row('SELECT slowest FROM memories WHERE tenant_id = ?', 2500.25, '2026-06-01T10:00:00.000Z');
const NEWEST = row('UPDATE memories SET access_count = access_count + ?', 75, '2026-06-01T12:00:00.000Z');
const MIDDLE = row(
  'SELECT middle FROM memories_fts WHERE memories_fts MATCH ?',
  120,
  '2026-06-01T11:00:00.000Z',
);

/**
 * The storage contract of the slow-query log (`query_log`), run unchanged by every driver against a
 * real database opened with the driver's own slow-query log off, so that only these rows are there.
 */
export function runQueryLogStoreContract(
  driver: string,
  open: () => Promise<QueryLogHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`QueryLogStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: QueryLogHarness;
    let log: QueryLogStore;
    beforeEach(async () => {
      h = await open();
      log = h.stores.queryLog;
      await log.append([OLD, SLOWEST, NEWEST]);
      await log.append([MIDDLE]);
    });
    afterEach(async () => {
      await h?.close();
    });

    it('lists the newest first by default, and the slowest first when asked, at most limit', async () => {
      expect(await log.list({ limit: 10 })).toEqual([NEWEST, MIDDLE, SLOWEST, OLD]);
      expect(await log.list({ limit: 10, order: 'newest' })).toEqual([NEWEST, MIDDLE, SLOWEST, OLD]);
      expect(await log.list({ limit: 2, order: 'slowest' })).toEqual([SLOWEST, OLD]);
      expect(await log.list({ limit: 1 })).toEqual([NEWEST]);
    });

    it('lists only the rows at or after since', async () => {
      expect(await log.list({ limit: 10, since: SLOWEST.createdAt, order: 'slowest' })).toEqual([
        SLOWEST,
        MIDDLE,
        NEWEST,
      ]);
      expect(await log.list({ limit: 10, since: '2027-01-01T00:00:00.000Z' })).toEqual([]);
    });

    it('purges the rows before a time and says how many', async () => {
      expect(await log.purgeBefore(MIDDLE.createdAt)).toBe(2);
      expect(await log.list({ limit: 10 })).toEqual([NEWEST, MIDDLE]);
      expect(await log.purgeBefore(OLD.createdAt)).toBe(0);
    });

    it('keeps long statements whole and an empty batch writes nothing', async () => {
      await log.append([]);
      const long = row(`SELECT ${'x, '.repeat(1000)}y FROM t`, 1.5, '2026-07-01T00:00:00.000Z');
      await log.append([long]);
      expect((await log.list({ limit: 10 })).length).toBe(5);
      expect((await log.list({ limit: 1 }))[0]).toEqual(long);
    });
  });
}
