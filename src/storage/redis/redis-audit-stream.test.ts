import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { redisSkipReason, redisUrl } from '../../../test/services/engines.js';
import { freePort } from '../../../test/services/local-postgres.js';
import { silentLogger } from '../../core/logger.js';
import type { AuditEvent } from '../../modules/audit/audit-store.js';
import { AUDIT_STREAMS, auditStreamOf, createRedisAuditStream } from './redis-audit-stream.js';

const url = redisUrl();

function event(n: number, action: string, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: `aud_${String(n).padStart(4, '0')}`,
    at: '2026-06-01T12:00:00.000Z',
    principal: 'key:k_alice',
    tenantId: 'tenant-a',
    action,
    target: `t_${n}`,
    outcome: 'ok',
    details: { n },
    ...over,
  };
}

/** A stream entry's fields as an object. */
function fieldsOf(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}

describe('audit stream routing', () => {
  it('sends data actions to audit.operations and the rest to audit.events', () => {
    expect(auditStreamOf('memory.remember')).toBe('audit.operations');
    expect(auditStreamOf('session.open')).toBe('audit.operations');
    expect(auditStreamOf('execution.run')).toBe('audit.operations');
    expect(auditStreamOf('key.create')).toBe('audit.events');
    expect(auditStreamOf('admin.maintenance')).toBe('audit.events');
    expect(auditStreamOf('auth.denied')).toBe('audit.events');
    expect(auditStreamOf('memoryx.remember')).toBe('audit.events');
  });
});

describe.skipIf(!url)(`Redis audit stream${url ? '' : ` (skipped: ${redisSkipReason()})`}`, () => {
  let reader: Redis;
  beforeAll(() => {
    reader = new Redis(url as string);
  });
  afterAll(async () => {
    await reader?.quit();
  });
  beforeEach(async () => {
    await reader.del(AUDIT_STREAMS.operations, AUDIT_STREAMS.events);
  });

  it('adds each event to its stream, in order, with its columns as fields', async () => {
    const stream = createRedisAuditStream(url as string, { maxLen: 1000, logger: silentLogger });
    await stream.publish([
      event(1, 'memory.remember', { details: { status: 'created', ids: ['a'] } }),
      event(2, 'key.create', { target: null, principal: 'cli:root' }),
      event(3, 'memory.forget', { outcome: 'error', details: { code: 'NOT_FOUND' } }),
    ]);
    await stream.close();
    const operations = await reader.xrange(AUDIT_STREAMS.operations, '-', '+');
    expect(operations.map(([, f]) => fieldsOf(f))).toEqual([
      {
        id: 'aud_0001',
        at: '2026-06-01T12:00:00.000Z',
        principal: 'key:k_alice',
        tenant_id: 'tenant-a',
        action: 'memory.remember',
        target: 't_1',
        outcome: 'ok',
        details: '{"status":"created","ids":["a"]}',
      },
      expect.objectContaining({ id: 'aud_0003', outcome: 'error', details: '{"code":"NOT_FOUND"}' }),
    ]);
    const events = await reader.xrange(AUDIT_STREAMS.events, '-', '+');
    expect(events.map(([, f]) => fieldsOf(f))).toEqual([
      expect.objectContaining({ id: 'aud_0002', action: 'key.create', target: '', principal: 'cli:root' }),
    ]);
  });

  it('trims each stream to about maxLen entries', async () => {
    const stream = createRedisAuditStream(url as string, { maxLen: 50, logger: silentLogger });
    for (let batch = 0; batch < 10; batch++)
      await stream.publish(Array.from({ length: 100 }, (_, i) => event(batch * 100 + i, 'memory.remember')));
    await stream.close();
    const length = await reader.xlen(AUDIT_STREAMS.operations);
    // `~` trims whole macro nodes (100 entries each by default): never below maxLen, never far above.
    expect(length).toBeGreaterThanOrEqual(50);
    expect(length).toBeLessThanOrEqual(150);
    const [newest] = await reader.xrevrange(AUDIT_STREAMS.operations, '+', '-', 'COUNT', 1);
    expect(fieldsOf(newest?.[1] ?? []).id).toBe('aud_0999');
  });

  it('does nothing once closed', async () => {
    const stream = createRedisAuditStream(url as string, { maxLen: 10, logger: silentLogger });
    await stream.close();
    await stream.publish([event(1, 'key.revoke')]);
    expect(await reader.xlen(AUDIT_STREAMS.events)).toBe(0);
    await stream.close();
  });
});

describe('Redis audit stream, unreachable', () => {
  it('fails a publish (for the audit log to warn about) and closes without hanging', async () => {
    const port = await freePort();
    const stream = createRedisAuditStream(`redis://:hunter2@127.0.0.1:${port}`, {
      maxLen: 10,
      logger: silentLogger,
    });
    await expect(stream.publish([event(1, 'key.create')])).rejects.toThrow();
    await stream.close();
  });
});
