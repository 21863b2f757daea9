import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RequestScope } from '../../core/scope.js';
import type { SessionStore } from '../../modules/sessions/session-store.js';

export interface SessionHarness {
  sessions: SessionStore;
  close(): Promise<void>;
}

const A: RequestScope = { tenantId: 'tenant-a' };
const B: RequestScope = { tenantId: 'tenant-b' };
const T0 = '2026-06-01T12:00:00.000Z';
const T1 = '2026-06-01T13:30:00.000Z';

/**
 * The storage contract of the sessions module, run unchanged by every driver against a real database.
 * `skip` names why this run cannot test the driver (the suite is then reported skipped with it).
 */
export function runSessionStoreContract(
  driver: string,
  open: () => Promise<SessionHarness>,
  skip: string | null = null,
): void {
  const suite = skip ? describe.skip : describe;
  suite(`SessionStore contract: ${driver}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: SessionHarness;
    beforeEach(async () => {
      h = await open();
    });
    afterEach(async () => {
      await h?.close();
    });

    it('opens a session, then resumes it with a new last_seen_at and its first project', async () => {
      const first = await h.sessions.open(A, { id: 'ses-1', project: 'p', client: 'claude', now: T0 });
      expect(first).toEqual({
        resumed: false,
        session: { id: 'ses-1', project: 'p', client: 'claude', created_at: T0, last_seen_at: T0 },
      });
      const again = await h.sessions.open(A, { id: 'ses-1', project: 'q', client: null, now: T1 });
      expect(again.resumed).toBe(true);
      expect(again.session).toEqual({
        id: 'ses-1',
        project: 'p',
        client: 'claude',
        created_at: T0,
        last_seen_at: T1,
      });
      expect(await h.sessions.get(A, 'ses-1')).toEqual(again.session);
      expect(await h.sessions.get(A, 'ses-missing')).toBeNull();
    });

    it('keeps tenants apart: the same id in another tenant is another session', async () => {
      await h.sessions.open(A, { id: 'ses-1', project: null, client: null, now: T0 });
      expect(await h.sessions.get(B, 'ses-1')).toBeNull();
      const other = await h.sessions.open(B, { id: 'ses-1', project: 'b', client: null, now: T1 });
      expect(other.resumed).toBe(false);
      expect((await h.sessions.get(A, 'ses-1'))?.project).toBeNull();
      expect((await h.sessions.get(B, 'ses-1'))?.project).toBe('b');
    });

    it('opens one session when the same id is opened concurrently', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          h.sessions.open(A, { id: 'ses-c', project: null, client: null, now: T0 }),
        ),
      );
      expect(results.filter((r) => !r.resumed)).toHaveLength(1);
      expect(await h.sessions.get(A, 'ses-c')).toMatchObject({ id: 'ses-c', created_at: T0 });
    });
  });
}
