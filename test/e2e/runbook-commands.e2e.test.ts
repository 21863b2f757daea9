/**
 * docs/OPERATIONS.md's Runbook names exact commands: every `brain …` in it must be a command of the built
 * `brain`, and every option given to it one that command has (its --help says so).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBrain, tempHome } from './brain-process.js';

const OPERATIONS = path.resolve(import.meta.dirname, '../../docs/OPERATIONS.md');
const GLOBAL_OPTIONS = ['--version', '--config', '--env-file', '--help'];

/** The text of the `## Runbook` section. */
function runbook(): string {
  const text = fs.readFileSync(OPERATIONS, 'utf8');
  const start = text.indexOf('\n## Runbook\n');
  expect(start).toBeGreaterThan(0);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

interface Invocation {
  /** The command's words: `backup`, `backup verify`. */
  words: string[];
  options: string[];
  line: string;
}

/** Each `brain …` of the section's code blocks and inline code, cut at a comment, pipe or `&&`. */
function invocations(): Invocation[] {
  const section = runbook();
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => (m[1] as string).split('\n'));
  const inline = [...section.replaceAll(/```sh\n[\s\S]*?```/g, '').matchAll(/`([^`]+)`/g)].map(
    (m) => m[1] as string,
  );
  const found: Invocation[] = [];
  for (const line of [...blocks, ...inline]) {
    // `alias brain=…` defines the command; in compose lines `brain` is the service's name.
    if (/^\s*alias |docker compose/.test(line)) continue;
    // Quoted text (a log message grepped for, a JSON body) is not a command.
    const code = line
      .replace(/\s#\s.*$/, '')
      .replaceAll(/'[^']*'|"[^"]*"/g, "''")
      .trim();
    // `brain` where a command starts: the line's start, or after a pipe, `&&`, `;` or `$(`.
    for (const match of code.matchAll(/(?:^|\||&&|;|\$\()\s*brain\s+([^|&;#)]*)/g)) {
      const tokens = (match[1] as string).trim().split(/\s+/).filter(Boolean);
      if (tokens.length === 0) continue;
      const words: string[] = [];
      for (const token of tokens) {
        if (!/^[a-z][a-z-]*$/.test(token) || words.length === 2) break;
        words.push(token);
      }
      const options = tokens.filter((t) => t.startsWith('--')).map((t) => t.replace(/=.*$/, ''));
      found.push({ words, options, line: line.trim() });
    }
  }
  return found;
}

const home = tempHome('brain-runbook-');
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

const help = new Map<string, Promise<string>>();
/** `brain <words> --help`, once per command. */
function helpOf(words: string[]): Promise<string> {
  const key = words.join(' ');
  let text = help.get(key);
  if (!text) {
    text = runBrain([...words, '--help'], { BRAIN_HOME: home }).then((r) => {
      expect({ command: key, code: r.code, stderr: r.stderr }).toEqual({ command: key, code: 0, stderr: '' });
      return r.stdout;
    });
    help.set(key, text);
  }
  return text;
}

/** The subcommands a help text lists under `Commands:`. */
const subcommands = (text: string) =>
  [...(text.split('\nCommands:\n')[1] ?? '').matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1] as string);

describe("docs/OPERATIONS.md's Runbook", () => {
  const all = invocations();

  it('names many brain commands (the extraction works)', () => {
    expect(all.length).toBeGreaterThan(40);
    const commands = new Set(all.map((i) => i.words[0]));
    for (const name of [
      'backup',
      'restore',
      'migrate',
      'maintenance',
      'db',
      'keys',
      'audit',
      'doctor',
      'jobs',
    ])
      expect(commands).toContain(name);
  });

  it.each(all.map((i) => [i.line, i] as const))('%s', async (_line, invocation) => {
    const [first, second] = invocation.words;
    if (first === undefined) {
      for (const option of invocation.options) expect(GLOBAL_OPTIONS).toContain(option);
      return;
    }
    const top = await helpOf([first]);
    expect(top).toMatch(new RegExp(`^Usage: brain ${first} `));
    const listed = subcommands(top);
    // A second word is a subcommand when the command has any; otherwise it is an argument.
    const words = second !== undefined && listed.length > 0 ? [first, second] : [first];
    if (words.length === 2) expect(listed, invocation.line).toContain(second);
    const text = words.length === 2 ? await helpOf(words) : top;
    for (const option of invocation.options) {
      if (GLOBAL_OPTIONS.includes(option)) continue;
      expect({
        line: invocation.line,
        option,
        known: text.includes(`${option} `) || text.includes(`${option}\n`),
      }).toEqual({ line: invocation.line, option, known: true });
    }
  });
});
