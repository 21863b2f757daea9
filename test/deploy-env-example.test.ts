import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/config/config-schema.js';
import { loadConfig } from '../src/config/load-config.js';
import { removeTempDirs, tempDir } from './deploy-helpers.js';
import { ENV_EXAMPLE_PATH, renderEnvExample, settingDefault } from './env-example.js';

/** The `#NAME=value` lines of the file: each a setting, commented out at its default. */
function settingLines(text: string): { name: string; line: string }[] {
  return text
    .split('\n')
    .map((line) => /^#([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1] as string, line: m[0].slice(1) }));
}

describe('.env.example', () => {
  afterAll(removeTempDirs);

  it('is what the generator makes from the settings schema and docs/CONFIG.md (regenerate with -u)', async () => {
    await expect(renderEnvExample()).toMatchFileSnapshot(ENV_EXAMPLE_PATH);
  });

  it('names every setting exactly once and nothing that is not a setting', () => {
    const names = settingLines(fs.readFileSync(ENV_EXAMPLE_PATH, 'utf8')).map((s) => s.name);
    expect([...names].sort()).toEqual(SETTINGS.map((s) => s.env).sort());
    expect(new Set(names).size).toBe(names.length);
  });

  it('shows each default as the schema has it: uncommented, the file loads to the default configuration', () => {
    const home = tempDir('brain-env-example-');
    const lines = settingLines(fs.readFileSync(ENV_EXAMPLE_PATH, 'utf8'));
    // BRAIN_HOME stays out: a .env given with --env-file may move the home, and its line is empty anyway.
    const uncommented = lines.filter((s) => s.name !== 'BRAIN_HOME').map((s) => s.line);
    const envFile = path.join(home, 'example.env');
    fs.writeFileSync(envFile, `${uncommented.join('\n')}\n`);

    const fromFile = loadConfig({ envFile, env: { BRAIN_HOME: home }, cwd: home });
    const defaults = loadConfig({ env: { BRAIN_HOME: home }, cwd: home });
    expect(fromFile.problems).toEqual([]);
    expect(fromFile.config).toEqual(defaults.config);

    // Every setting with a default is written out (not left empty) and read back from the file.
    const parsed = parseEnv(uncommented.join('\n'));
    for (const spec of SETTINGS) {
      const value = settingDefault(spec);
      const written = value !== undefined && !(Array.isArray(value) && value.length === 0);
      if (spec.env === 'BRAIN_HOME') continue;
      expect({ env: spec.env, value: parsed[spec.env] !== '' }).toEqual({ env: spec.env, value: written });
      if (written)
        expect({ env: spec.env, source: fromFile.sources[spec.key] }).toEqual({
          env: spec.env,
          source: '.env',
        });
    }
  });

  it('says each default in the comment above its line', () => {
    const text = fs.readFileSync(ENV_EXAMPLE_PATH, 'utf8').split('\n');
    for (const spec of SETTINGS) {
      const at = text.indexOf(text.find((l) => l.startsWith(`#${spec.env}=`)) ?? '');
      const comment = text[at - 1] ?? '';
      const value = text[at]?.slice(spec.env.length + 2) ?? '';
      expect(comment, spec.env).toMatch(/^# .*; default /);
      if (value !== '') expect(comment, spec.env).toContain(`; default ${value}`);
    }
  });
});
