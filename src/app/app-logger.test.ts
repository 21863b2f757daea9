import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createAppLogger, LOG_FILES } from './app-logger.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A terminal stand-in: the lines the logger wrote to "stdout". */
function capture() {
  const lines: string[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(line) } };
}

function readLines(file: string): { level: number; msg: string }[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
}

describe('createAppLogger', () => {
  it('writes combined.log and error.log beside the terminal, rotating and keeping 10 and 5 files', async () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'brain-logs-')), 'not-yet', 'logs');
    dirs.push(path.dirname(path.dirname(dir)));
    const terminal = capture();
    const logger = createAppLogger({
      level: 'info',
      stream: 'stdout',
      logPath: dir,
      rotateSize: '300B',
      terminal: terminal.stream,
    });
    for (let i = 0; i < 60; i++) {
      logger.info({ i }, 'an ordinary line');
      if (i % 2 === 0) logger.error({ i }, 'a failure');
    }
    logger.debug('below the level: nowhere');
    await logger.closeFiles();

    expect(terminal.lines).toHaveLength(90);
    const files = fs.readdirSync(dir).sort();
    const rotated = (name: string) => files.filter((f) => f.startsWith(`${name}.`));
    // ~150-byte lines in 300-byte files: far more rotations than are kept.
    expect(rotated(LOG_FILES.combined.name)).toHaveLength(10);
    expect(rotated(LOG_FILES.error.name)).toHaveLength(5);
    expect(files).toContain('combined.log.10');
    expect(files).not.toContain('combined.log.11');
    expect(files).toContain('error.log.5');
    expect(files).not.toContain('error.log.6');

    const errorLines = [LOG_FILES.error.name, ...rotated(LOG_FILES.error.name)].flatMap((f) =>
      readLines(path.join(dir, f)),
    );
    expect(errorLines.length).toBeGreaterThan(0);
    expect(errorLines.every((l) => l.level >= 50 && l.msg === 'a failure')).toBe(true);
    // Oldest to newest: the current file keeps its name and the newest lines; both kinds reach it.
    const combined = ['combined.log.2', 'combined.log.1', LOG_FILES.combined.name].flatMap((f) =>
      readLines(path.join(dir, f)),
    );
    expect(new Set(combined.map((l) => l.msg))).toEqual(new Set(['an ordinary line', 'a failure']));
    expect(combined.at(-1)).toMatchObject({ msg: 'an ordinary line', i: 59 });
  });

  it('redacts credentials on the terminal and in the files', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-logs-'));
    dirs.push(dir);
    const terminal = capture();
    const logger = createAppLogger({
      level: 'info',
      stream: 'stdout',
      logPath: dir,
      terminal: terminal.stream,
    });
    logger.error(
      {
        req: {
          method: 'GET',
          headers: { authorization: 'Bearer s3cret-token', cookie: 'sid=abc', 'x-api-key': 'brk_live_1' },
        },
        embedder: { apiKey: 'sk-123', model: 'm' },
        db: { password: 'hunter2' },
      },
      'request failed',
    );
    await logger.closeFiles();
    for (const text of [terminal.lines.join(''), fs.readFileSync(path.join(dir, 'error.log'), 'utf8')]) {
      for (const secret of ['s3cret-token', 'sid=abc', 'brk_live_1', 'sk-123', 'hunter2'])
        expect(text).not.toContain(secret);
      const line = JSON.parse(text.trim().split('\n')[0] as string);
      expect(line.req.headers).toEqual({
        authorization: '[redacted]',
        cookie: '[redacted]',
        'x-api-key': '[redacted]',
      });
      expect(line.embedder).toEqual({ apiKey: '[redacted]', model: 'm' });
      expect(line.req.method).toBe('GET');
    }
  });

  it('without a log path writes the terminal only', async () => {
    const terminal = capture();
    const logger = createAppLogger({ level: 'warn', stream: 'stderr', terminal: terminal.stream });
    logger.info('hidden');
    logger.warn({ token: 'abc' }, 'shown');
    await logger.closeFiles();
    expect(terminal.lines).toHaveLength(1);
    expect(JSON.parse(terminal.lines[0] as string)).toMatchObject({ msg: 'shown', token: '[redacted]' });
  });

  it('names the directory when it cannot be created', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-logs-'));
    dirs.push(dir);
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    expect(() =>
      createAppLogger({ level: 'info', stream: 'stdout', logPath: path.join(file, 'logs') }),
    ).toThrow(/BRAIN_LOG_PATH: cannot create the log directory .*a-file\/logs \(ENOTDIR\)/);
  });
});
