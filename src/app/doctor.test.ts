import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { engineEnv } from '../../test/test-brain.js';
import { loadConfig } from '../config/load-config.js';
import { silentLogger } from '../core/logger.js';
import { migrateDatabase } from './build-brain.js';
import { DOCTOR_CHECKS, runDoctor } from './doctor.js';

const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});

/** The configuration `brain doctor` reads for a fresh home on BRAIN_TEST_ENGINE, with `env` on top. */
function loaded(env: Record<string, string> = {}) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-doctor-'));
  homes.push(home);
  return loadConfig({
    env: { BRAIN_HOME: home, LOG_LEVEL: 'silent', ...engineEnv(home), ...env },
    cwd: home,
  });
}

const line = (report: Awaited<ReturnType<typeof runDoctor>>, name: string) =>
  report.checks.find((c) => c.name === name);

describe(`brain doctor on ${process.env.BRAIN_TEST_ENGINE ?? 'sqlite'}`, () => {
  it('runs every check: the store is reachable, intact and current; a missing backup is the one ✗', async () => {
    const config = loaded();
    const fresh = await runDoctor(config);
    // A store without its schema: doctor does not migrate, it says what to run and skips what needs it.
    expect(line(fresh, 'migrations')).toMatchObject({ status: 'fail', fix: 'brain migrate' });
    expect(line(fresh, 'integrity')?.status).toBe('skipped');
    await migrateDatabase(config.config, silentLogger);
    const report = await runDoctor(config);
    const engine = process.env.BRAIN_TEST_ENGINE ?? 'sqlite';
    expect(line(report, 'database')).toMatchObject({
      status: 'ok',
      message: expect.stringContaining(engine),
    });
    expect(line(report, 'integrity')).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(engine === 'sqlite' ? /^quick_check: / : /^vectors: /),
    });
    expect(line(report, 'migrations')?.status).toBe('ok');
    expect(line(report, 'embedder')?.status).toBe('ok');
    expect(line(report, 'disk')?.status).toBe('ok');
    expect(line(report, 'backups')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/^brain backup/),
    });
    expect(report.checks.filter((c) => c.status === 'fail').map((c) => c.name)).toEqual(['backups']);
    expect(report.ok).toBe(false);
  });

  it('a later check is one more entry; a warning does not fail, a check that throws is a ✗ with its reason', async () => {
    const warnOnly = await runDoctor(loaded(), {
      checks: [
        { name: 'sandbox', run: async () => ({ status: 'warn', message: 'no sandbox yet', fix: 'later' }) },
      ],
    });
    expect(warnOnly).toEqual({
      ok: true,
      checks: [{ name: 'sandbox', status: 'warn', message: 'no sandbox yet', fix: 'later' }],
    });
    const thrown = await runDoctor(loaded(), {
      checks: [
        ...DOCTOR_CHECKS.filter((c) => c.name === 'permissions'),
        {
          name: 'broken',
          run: async () => {
            throw new Error('boom');
          },
        },
      ],
    });
    expect(thrown.ok).toBe(false);
    expect(thrown.checks.map((c) => [c.name, c.status])).toEqual([
      ['permissions', 'ok'],
      ['broken', 'fail'],
    ]);
    expect(thrown.checks[1]?.message).toBe('the check failed: boom');
  });

  it('a port held by another program and a world-readable home are ✗ with their fix', async () => {
    const other = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => other.once('listening', resolve));
    try {
      const config = loaded({ BRAIN_PORT: String((other.address() as net.AddressInfo).port) });
      fs.chmodSync(config.config.home, 0o755);
      const only = DOCTOR_CHECKS.filter((c) => c.name === 'ports' || c.name === 'permissions');
      const report = await runDoctor(config, { checks: only });
      expect(line(report, 'port')).toMatchObject({
        status: 'fail',
        message: expect.stringMatching(/in use by another program/),
      });
      expect(line(report, 'permissions')).toMatchObject({
        status: 'fail',
        fix: `chmod 700 ${config.config.home}`,
      });
    } finally {
      other.close();
    }
  });

  it('a setting out of range is the config line, and the rest still runs', async () => {
    const report = await runDoctor(loaded({ BRAIN_BUSY_TIMEOUT_MS: '-5' }), {
      checks: DOCTOR_CHECKS.filter((c) => c.name === 'config' || c.name === 'permissions'),
    });
    expect(line(report, 'config')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/BRAIN_BUSY_TIMEOUT_MS/),
    });
    expect(line(report, 'permissions')?.status).toBe('ok');
  });
});
