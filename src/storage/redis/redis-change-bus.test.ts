import { afterEach, describe, expect, it } from 'vitest';
import { redisSkipReason, redisUrl } from '../../../test/services/engines.js';
import { freePort } from '../../../test/services/local-postgres.js';
import { silentLogger } from '../../core/logger.js';
import { createRedisChangeBus, type RedisChangeBus } from './redis-change-bus.js';

const url = redisUrl();

describe.skipIf(!url)(`Redis change bus${url ? '' : ` (skipped: ${redisSkipReason()})`}`, () => {
  const open: RedisChangeBus[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((bus) => bus.close()));
  });

  it('tells every other replica which tenant changed', async () => {
    const [a, b] = await Promise.all([
      createRedisChangeBus(url as string, silentLogger),
      createRedisChangeBus(url as string, silentLogger),
    ]);
    open.push(a, b);
    const heard: string[] = [];
    const got = new Promise<void>((resolve) =>
      b.subscribe((tenant) => {
        heard.push(tenant);
        resolve();
      }),
    );
    await a.publish('tenant-x');
    await got;
    expect(heard).toEqual(['tenant-x']);
    expect(a.check()).toMatchObject({ ok: true, message: expect.stringMatching(/carries change notices/) });
    await a.close();
    expect(a.check().ok).toBe(false);
  });

  it('stops telling a listener that unsubscribed', async () => {
    const bus = await createRedisChangeBus(url as string, silentLogger);
    open.push(bus);
    const heard: string[] = [];
    const off = bus.subscribe((tenant) => heard.push(tenant));
    const second: string[] = [];
    const got = new Promise<void>((resolve) =>
      bus.subscribe((tenant) => {
        second.push(tenant);
        if (second.length === 2) resolve();
      }),
    );
    await bus.publish('one');
    await new Promise((r) => setTimeout(r, 50));
    off();
    await bus.publish('two');
    await got;
    expect(heard).toEqual(['one']);
    expect(second).toEqual(['one', 'two']);
  });
});

describe('Redis change bus, unreachable', () => {
  it('fails to open with UNAVAILABLE naming BRAIN_REDIS_URL and the address, not the password', async () => {
    const port = await freePort();
    const error = await createRedisChangeBus(`redis://:hunter2@127.0.0.1:${port}`, silentLogger).then(
      () => null,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(error?.code).toBe('UNAVAILABLE');
    expect(error?.message).toMatch(new RegExp(`BRAIN_REDIS_URL.*127\\.0\\.0\\.1:${port}`));
    expect(error?.message).not.toContain('hunter2');
  });
});
