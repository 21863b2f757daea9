import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServe, tempHome } from './brain-process.js';

const homes: string[] = [];
afterAll(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});

const parse = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('brain serve logs, as built', () => {
  it('writes every line to BRAIN_LOG_PATH/combined.log as well as stdout, request ids and all, up to its last', async () => {
    const home = tempHome();
    homes.push(home);
    const logPath = path.join(home, 'logs');
    const server = await startServe({ BRAIN_HOME: home, BRAIN_LOG_PATH: logPath });
    const res = await fetch(`${server.url}/health/live`, {
      headers: { 'x-request-id': 'e2e-log-1', authorization: 'Bearer not-logged' },
    });
    expect(res.headers.get('x-request-id')).toBe('e2e-log-1');
    expect(await server.stop()).toBe(0);

    const stdout = parse(server.logs());
    const combined = parse(fs.readFileSync(path.join(logPath, 'combined.log'), 'utf8'));
    expect(combined.map((l) => l.msg)).toEqual(stdout.map((l) => l.msg));
    expect(combined.filter((l) => l.request_id === 'e2e-log-1').map((l) => l.msg)).toEqual([
      'incoming request',
      'request completed',
    ]);
    // The last line of a process that ended by itself is in the file too.
    expect(combined.at(-1)?.msg).toBe('stopped');
    expect(fs.readFileSync(path.join(logPath, 'combined.log'), 'utf8')).not.toContain('not-logged');
    expect(fs.readFileSync(path.join(logPath, 'error.log'), 'utf8')).toBe('');
  });
});
