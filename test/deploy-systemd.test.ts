import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DRAIN_TIMEOUT_MS } from '../src/app/shutdown.js';
import { DEPLOY, removeTempDirs, runTool, tempDir } from './deploy-helpers.js';

const SYSTEMD = path.join(DEPLOY, 'systemd');
const UNITS = ['brain-mcp.service', 'brain-worker@.service'];

/** `Key=value` lines of a unit's [Service] section (a key may repeat). */
function serviceSection(unit: string): [string, string][] {
  const text = fs.readFileSync(path.join(SYSTEMD, unit), 'utf8');
  const section = /^\[Service\]$([\s\S]*?)(?=^\[)/m.exec(text)?.[1] ?? '';
  return section
    .split('\n')
    .map((line) => /^([A-Za-z]+)=(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1] as string, m[2] as string]);
}

function values(unit: string, key: string): string[] {
  return serviceSection(unit)
    .filter(([k]) => k === key)
    .map(([, v]) => v);
}

/** The unit in a directory of its own; verify resolves ExecStart as shipped (/usr/bin/env exists). */
function copyUnit(unit: string, edit: (text: string) => string = (t) => t): string {
  const dir = tempDir('brain-systemd-');
  const file = path.join(dir, unit);
  fs.writeFileSync(file, edit(fs.readFileSync(path.join(SYSTEMD, unit), 'utf8')));
  return file;
}

describe('systemd units', () => {
  afterAll(removeTempDirs);

  it.each(UNITS)('%s passes systemd-analyze verify without a warning', (unit) => {
    const result = runTool('systemd-analyze', ['verify', '--man=no', copyUnit(unit)]);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('verify would catch a mistyped directive (so the empty output above means something)', () => {
    const bad = copyUnit('brain-mcp.service', (t) => t.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
    expect(runTool('systemd-analyze', ['verify', '--man=no', bad]).output).toMatch(
      /Unknown key 'NoNewPrivilege'/,
    );
  });

  it('the worker template verifies as an instance too', () => {
    const template = copyUnit('brain-worker@.service');
    const result = runTool('systemd-analyze', [
      'verify',
      '--man=no',
      path.join(path.dirname(template), 'brain-worker@3.service'),
    ]);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it.each(UNITS)('%s runs brain as the dedicated user with BRAIN_HOME writable and nothing else', (unit) => {
    expect(values(unit, 'User')).toEqual(['brain']);
    expect(values(unit, 'Group')).toEqual(['brain']);
    expect(values(unit, 'Environment')).toContain('BRAIN_HOME=/var/lib/brain');
    expect(values(unit, 'ReadWritePaths')).toEqual(['/var/lib/brain']);
    expect(values(unit, 'StateDirectory')).toEqual(['brain']);
    expect(values(unit, 'ExecStart')[0]).toMatch(/^\/usr\/bin\/env brain (serve|worker --id %i)$/);
  });

  it.each(UNITS)('%s carries the hardening and limits of the operations guide', (unit) => {
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      CapabilityBoundingSet: '',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
      SystemCallFilter: '@system-service',
      Restart: 'on-failure',
      KillMode: 'mixed',
    };
    for (const [key, value] of Object.entries(expected))
      expect({ key, value: values(unit, key)[0] }).toEqual({ key, value });
    for (const key of ['MemoryMax', 'TasksMax', 'LimitNOFILE']) expect(values(unit, key)).toHaveLength(1);
  });

  it.each(UNITS)(
    '%s gives the stop more time than Brain drains (and its primary waits for workers)',
    (unit) => {
      const stop = /^(\d+)s$/.exec(values(unit, 'TimeoutStopSec')[0] ?? '');
      expect(stop).not.toBeNull();
      // The cluster primary kills workers DRAIN_TIMEOUT_MS + 2 s after the signal (serve-cluster.ts).
      expect(Number(stop?.[1]) * 1000).toBeGreaterThan(DRAIN_TIMEOUT_MS + 2000);
    },
  );

  it.each([
    ['brain-mcp.service', 2.0],
    ['brain-worker@.service', 2.5],
  ])("%s's exposure (systemd-analyze security --offline) stays at or below %s", (unit, limit) => {
    const result = runTool('systemd-analyze', ['security', '--offline=yes', '--no-pager', copyUnit(unit)]);
    const level = /Overall exposure level for .*: (\d+\.\d+)/.exec(result.output);
    expect(level, result.output).not.toBeNull();
    expect(Number(level?.[1])).toBeLessThanOrEqual(limit);
  });

  it('brain.sysusers.conf creates the brain system user with BRAIN_HOME as its home and no shell', () => {
    const root = tempDir('brain-sysusers-');
    fs.mkdirSync(path.join(root, 'etc'));
    const result = runTool('systemd-sysusers', [`--root=${root}`, path.join(SYSTEMD, 'brain.sysusers.conf')]);
    expect(result.code, result.output).toBe(0);
    const passwd = fs.readFileSync(path.join(root, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^brain:x:\d+:\d+:Brain memory server:\/var\/lib\/brain:\/usr\/sbin\/nologin$/m);
    expect(fs.readFileSync(path.join(root, 'etc/group'), 'utf8')).toMatch(/^brain:x:\d+:$/m);
  });
});
