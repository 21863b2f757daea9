import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildBrain } from '../../app/build-brain.js';
import { backupRuntime } from '../../app/run-backup.js';
import type { BrainConfig } from '../../config/config-schema.js';
import { loadConfig, requireValidConfig } from '../../config/load-config.js';
import { silentLogger } from '../../core/logger.js';
import type { BackupRuntime } from './backup-commands.js';
import { type CliRuntime, EXIT, runCli } from './cli-program.js';

/**
 * The backup and restore commands against the real runtime on a temp SQLite home (the engines
 * themselves are tested in src/app/run-backup.test.ts on both). Only these commands run here, so the
 * runtime holds only what they call.
 */
const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});

function home(): BrainConfig {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-backup-cli-'));
  homes.push(dir);
  return requireValidConfig(
    loadConfig({ env: { BRAIN_HOME: dir, LOG_LEVEL: 'silent', BRAIN_DATABASE_URL: '' }, cwd: dir }),
  );
}

async function remember(config: BrainConfig, content: string): Promise<void> {
  const brain = await buildBrain(config, {
    logger: pino({ level: 'silent' }),
    migrate: true,
    embedQueue: false,
  });
  await brain.services.memory.remember(brain.scope, { content });
  await brain.close();
}

async function contents(config: BrainConfig): Promise<string[]> {
  const brain = await buildBrain(config, {
    logger: pino({ level: 'silent' }),
    migrate: true,
    embedQueue: false,
  });
  const { items } = await brain.services.memory.list(brain.scope, { limit: 50 });
  await brain.close();
  return items.map((m) => m.content).sort();
}

interface Run {
  code: number;
  out: string;
  err: string;
}

/** `brain …` with the backup runtime; `tty` and `answer` stand in for a person at a terminal (named fakes). */
async function cli(
  config: BrainConfig,
  argv: string[],
  terminal: { tty?: boolean; answer?: boolean } = {},
): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const runtime: BackupRuntime = {
    ...backupRuntime(() => ({ config, logger: silentLogger })),
    terminal: { interactive: () => terminal.tty ?? false, confirm: async () => terminal.answer ?? false },
  };
  const code = await runCli(argv, { version: 'test', ...runtime } as unknown as CliRuntime, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('brain backup', () => {
  it('takes a backup, lists it and verifies it, in words and in JSON', async () => {
    const config = home();
    await remember(config, 'hello');
    const taken = await cli(config, ['backup', '--json']);
    expect(taken.code, taken.err).toBe(EXIT.ok);
    const result = JSON.parse(taken.out) as { file: string; name: string; sha256: string };
    expect(fs.existsSync(result.file)).toBe(true);

    const listed = await cli(config, ['backup', 'list', '--json']);
    expect(JSON.parse(listed.out).backups).toEqual([
      expect.objectContaining({ name: result.name, checksum: 'ok', kind: 'db' }),
    ]);
    const human = await cli(config, ['backup', 'list']);
    expect(human.out).toMatch(new RegExp(`1 backups in .*\\n\\S+Z +[\\d.]+ KiB +ok +${result.name}`));

    const verified = await cli(config, ['backup', 'verify', result.file]);
    expect(verified.code).toBe(EXIT.ok);
    expect(verified.out).toContain(`good: ${result.file}`);
    expect(verified.out).toContain('✓ PRAGMA integrity_check: ok');
    expect(verified.out).toMatch(/memories +1/);

    fs.appendFileSync(result.file, 'x');
    const damaged = await cli(config, ['backup', 'verify', result.name, '--json']);
    expect(damaged.code).toBe(1);
    expect(JSON.parse(damaged.out)).toMatchObject({ ok: false, checksum: 'mismatch' });
    expect((await cli(config, ['backup', 'list'])).out).toContain('DAMAGED (checksum mismatch)');
  });

  it('names the file when it does not exist', async () => {
    const config = home();
    const missing = await cli(config, ['backup', 'verify', '/nowhere/brain_x.db.gz']);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.err).toContain('file: no such file: /nowhere/brain_x.db.gz');
  });
});

describe('brain restore', () => {
  it('refuses bad usage before touching anything, naming the option', async () => {
    const config = home();
    await remember(config, 'live');
    const backup = JSON.parse((await cli(config, ['backup', '--json'])).out) as { file: string };
    const cases: [string[], string][] = [
      [['restore'], 'file: name the backup to restore, or give --at TIME'],
      [['restore', backup.file, '--at', '1h', '--yes'], 'at: give a file or --at, not both'],
      [['restore', '--at', 'last tuesday', '--yes'], 'at: must be an ISO 8601 time'],
      [['restore', backup.file], 'yes: a restore replaces the store: confirm on a terminal, or pass --yes'],
    ];
    for (const [argv, message] of cases) {
      const run = await cli(config, argv);
      expect(run.code, argv.join(' ')).toBe(EXIT.usage);
      expect(run.err).toContain(message);
    }
    expect(await contents(config)).toEqual(['live']);
  });

  it('asks on a terminal: no changes nothing (exit 1), yes restores', async () => {
    const config = home();
    await remember(config, 'in the backup');
    const backup = JSON.parse((await cli(config, ['backup', '--json'])).out) as {
      file: string;
      name: string;
    };
    await remember(config, 'after');

    const declined = await cli(config, ['restore', backup.name], { tty: true, answer: false });
    expect(declined.code).toBe(1);
    expect(declined.err).toContain(`restore ${backup.file}`);
    expect(declined.err).toMatch(/memories +1/);
    expect(declined.out).toBe('restore cancelled: nothing was changed');
    expect(await contents(config)).toEqual(['after', 'in the backup']);

    const accepted = await cli(config, ['restore', backup.name], { tty: true, answer: true });
    expect(accepted.code, accepted.err).toBe(EXIT.ok);
    expect(accepted.out).toMatch(
      /restored .*\n.*schema version \d+\nthe previous data is kept at .*brain_old_\d{8}_\d{6}\.db/,
    );
    expect(await contents(config)).toEqual(['in the backup']);
  });

  it('restores the newest backup not after --at with --yes, JSON out', async () => {
    const config = home();
    await remember(config, 'only');
    await cli(config, ['backup']);
    await remember(config, 'later');
    const run = await cli(config, [
      'restore',
      '--at',
      new Date(Date.now() + 60_000).toISOString(),
      '--yes',
      '--json',
    ]);
    expect(run.code, run.err).toBe(EXIT.ok);
    expect(JSON.parse(run.out)).toMatchObject({ status: 'restored', migrations: [] });
    expect(await contents(config)).toEqual(['only']);
  });
});
