import { describe, expect, it } from 'vitest';
import { loadConfig, requireValidConfig } from '../config/load-config.js';
import { serveSafety } from './serve-safety.js';

const config = (env: Record<string, string>) =>
  requireValidConfig(loadConfig({ env: { BRAIN_HOME: '/tmp/brain-safety', ...env }, cwd: '/tmp' }));

describe('serveSafety: the start rules of brain serve', () => {
  it('without authentication binds 127.0.0.1 whatever BRAIN_HOST says, and says so', () => {
    const open = serveSafety(config({ BRAIN_HOST: '0.0.0.0' }), 0);
    expect(open.refusals).toEqual([]);
    expect(open.host).toBe('127.0.0.1');
    expect(open.warnings.join()).toMatch(
      /no authentication is configured: binding 127.0.0.1 instead of BRAIN_HOST=0.0.0.0/,
    );
    // An active key or a configured token keeps the host.
    expect(serveSafety(config({ BRAIN_HOST: '0.0.0.0' }), 1).host).toBe('0.0.0.0');
    expect(
      serveSafety(config({ BRAIN_HOST: '0.0.0.0', BRAIN_API_TOKEN: 'a-real-token-0123456789' }), 0).host,
    ).toBe('0.0.0.0');
  });

  it('holds authentication on for good when it serves other machines or runs in production', () => {
    expect(serveSafety(config({ BRAIN_HOST: '0.0.0.0' }), 1).authAlways).toBe(true);
    expect(serveSafety(config({ NODE_ENV: 'production' }), 1).authAlways).toBe(true);
    // Loopback only: revoking the last key turns it off again, as it started.
    expect(serveSafety(config({}), 1).authAlways).toBe(false);
    // No key: bound to 127.0.0.1 instead, nothing to hold.
    expect(serveSafety(config({ BRAIN_HOST: '0.0.0.0' }), 0).authAlways).toBe(false);
  });

  it('in production refuses no authentication, a non-local bind without it, and development secrets', () => {
    const none = serveSafety(config({ NODE_ENV: 'production', BRAIN_HOST: '0.0.0.0' }), 0);
    expect(none.refusals).toHaveLength(2);
    expect(none.refusals[0]).toMatch(
      /NODE_ENV=production needs authentication: create a key with `brain keys create/,
    );
    expect(none.refusals[1]).toMatch(/BRAIN_HOST=0.0.0.0 is not a local address/);
    const dev = serveSafety(
      config({
        NODE_ENV: 'production',
        BRAIN_API_TOKEN: 'dev-token-for-my-laptop',
        BRAIN_JWT_SECRET: 'secret-CHANGE_IN_PRODUCTION-0123456789abcdef',
        BRAIN_DATABASE_URL: 'postgres://brain:dev-password@db/brain',
      }),
      0,
    );
    expect(dev.refusals).toEqual([
      expect.stringContaining('BRAIN_API_TOKEN is still a development value'),
      expect.stringContaining('BRAIN_JWT_SECRET is still a development value'),
      expect.stringContaining('the password of BRAIN_DATABASE_URL is still a development value'),
    ]);
    const good = serveSafety(config({ NODE_ENV: 'production', BRAIN_API_TOKEN: 'f3a9c1e07b2d4c58a6e1' }), 0);
    expect(good).toEqual({ refusals: [], host: '127.0.0.1', warnings: [], authAlways: true });
    // Outside production the same development values start (it is a laptop).
    expect(serveSafety(config({ BRAIN_API_TOKEN: 'dev-token-for-my-laptop' }), 0).refusals).toEqual([]);
  });

  it('refuses OAuth without BRAIN_PUBLIC_URL in every mode', () => {
    const safety = serveSafety(config({ BRAIN_OAUTH_ISSUER: 'https://auth.example.com' }), 0);
    expect(safety.refusals).toEqual([expect.stringContaining('BRAIN_PUBLIC_URL is not')]);
  });
});
