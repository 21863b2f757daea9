/**
 * The audit event of a memory write, on BRAIN_TEST_ENGINE: stored once with the write (in the write's
 * own transaction where the driver can), with what the write did; a failed write has its error event
 * only; a write whose event cannot be stored is not written either.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Brain } from '../src/app/build-brain.js';
import type { RequestScope } from '../src/core/scope.js';
import { surfaceEngine } from './services/engines.js';
import { engineEnv, openTestBrain, type TestBrain } from './test-brain.js';

let fixture: TestBrain;
let brain: Brain;
const alice: RequestScope = { tenantId: 'audit-a', principal: 'key:alice' };
const bob: RequestScope = { tenantId: 'audit-b', principal: 'key:bob' };

beforeAll(async () => {
  fixture = await openTestBrain('brain-write-audit-', {
    logger: pino({ level: 'silent' }),
    env: { BRAIN_EMBEDDER: 'none' },
  });
  brain = fixture.brain;
});

afterAll(async () => {
  await fixture?.close();
});

/** Makes the engine refuse every audit event of `tenant`, as a full or broken audit table would. */
async function refuseAuditOf(tenant: string): Promise<void> {
  if (surfaceEngine() === 'sqlite') {
    const db = new Database(path.join(fixture.home, 'data', 'brain.db'));
    db.exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events WHEN NEW.tenant_id = '${tenant}'
      BEGIN SELECT RAISE(ABORT, 'audit refused'); END`);
    db.close();
    return;
  }
  const client = new pg.Client({ connectionString: engineEnv(fixture.home).BRAIN_DATABASE_URL });
  await client.connect();
  await client.query(`CREATE FUNCTION refuse_audit() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql`);
  await client.query(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW
    WHEN (NEW.tenant_id = '${tenant}') EXECUTE FUNCTION refuse_audit()`);
  await client.end();
}

async function events(scope: RequestScope) {
  return brain.storage.stores().audit.list({ tenantId: scope.tenantId, action: 'memory.', limit: 100 });
}

describe('the audit event of a memory write', () => {
  it('is stored once, by the time remember answers, with the memory and what became of the write', async () => {
    const first = await brain.services.memory.remember(alice, { content: 'The audit fixture likes oolong' });
    const again = await brain.services.memory.remember(alice, { content: 'the audit fixture likes  OOLONG' });
    expect(again).toMatchObject({ id: first.id, status: 'duplicate' });
    const stored = (await events(alice)).filter((e) => e.action === 'memory.remember');
    expect(stored).toHaveLength(2);
    expect(stored.map((e) => [e.target, e.outcome, e.details.status, e.principal]).reverse()).toEqual([
      [first.id, 'ok', 'created', 'key:alice'],
      [first.id, 'ok', 'duplicate', 'key:alice'],
    ]);
    expect(JSON.stringify(stored)).not.toContain('oolong');
    expect(await events(bob)).toEqual([]);
  });

  it('records a batch as one event with its count and ids', async () => {
    const results = await brain.services.memory.rememberMany(bob, [
      { content: 'Batch audit fact one' },
      { content: 'Batch audit fact two' },
    ]);
    const stored = (await events(bob)).filter((e) => e.action === 'memory.remember_batch');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      outcome: 'ok',
      target: null,
      details: { count: 2, ids: results.map((r) => r.id) },
    });
  });

  it('records a refused write as an error, and no write', async () => {
    const before = (await events(alice)).length;
    await expect(brain.services.memory.remember(alice, { content: '' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
    const stored = await events(alice);
    expect(stored).toHaveLength(before + 1);
    expect(stored[0]).toMatchObject({
      action: 'memory.remember',
      outcome: 'error',
      details: { code: 'INVALID_INPUT' },
    });
  });

  it('gives writes side by side each its own event, in its own tenant', async () => {
    const writes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        brain.services.memory.remember(i % 2 === 0 ? alice : bob, { content: `Side by side fact ${i}` }),
      ),
    );
    for (const [scope, parity] of [
      [alice, 0],
      [bob, 1],
    ] as const) {
      const targets = (await events(scope))
        .filter((e) => e.action === 'memory.remember' && e.details.status === 'created')
        .map((e) => e.target);
      const mine = writes.filter((_, i) => i % 2 === parity).map((w) => w.id);
      expect(targets.filter((t) => mine.includes(t as string)).sort()).toEqual([...mine].sort());
    }
  });

  it('leaves a write unwritten when its event cannot be stored with it', async () => {
    const refused: RequestScope = { tenantId: 'audit-refused', principal: 'key:carol' };
    await refuseAuditOf(refused.tenantId);
    await expect(
      brain.services.memory.remember(refused, { content: 'A fact with no audit' }),
    ).rejects.toThrow();
    await expect(
      brain.services.memory.rememberMany(refused, [
        { content: 'Batch with no audit one' },
        { content: 'two' },
      ]),
    ).rejects.toThrow();
    expect((await brain.services.memory.list(refused, {})).items).toEqual([]);
    // Other tenants' writes and events go on.
    const ok = await brain.services.memory.remember(alice, { content: 'Alice writes after the refusal' });
    expect((await events(alice)).some((e) => e.target === ok.id && e.outcome === 'ok')).toBe(true);
  });
});
