import { isSecretSetting, MASK, maskUrlCredentials, SETTINGS, type SettingName } from './config-schema.js';
import { type ConfigProblem, type LoadedConfig, settingsUsedBy } from './load-config.js';

/** A value as a report may show it: secrets as `****`, URL passwords hidden, in strings and lists alike. */
export function maskedValue(spec: SettingName, value: unknown): unknown {
  if (value === undefined || value === null || value === '') return value;
  if (isSecretSetting(spec)) return MASK;
  if (typeof value === 'string') return maskUrlCredentials(value);
  if (Array.isArray(value))
    return value.map((item) => (typeof item === 'string' ? maskUrlCredentials(item) : item));
  return value;
}

/** A setting's value as one line of text (lists comma-separated, as in the environment). */
export function displayValue(spec: SettingName, value: unknown): string {
  const masked = maskedValue(spec, value);
  if (masked === undefined || masked === null) return '';
  return Array.isArray(masked) ? masked.join(',') : String(masked);
}

/** A problem with any URL password in its message hidden (a bad value is echoed back). */
const maskedProblem = (p: ConfigProblem): ConfigProblem => ({ ...p, message: maskUrlCredentials(p.message) });

function table(rows: string[][]): string[] {
  const widths =
    rows[0]?.map((_, col) => Math.min(60, Math.max(...rows.map((r) => r[col]?.length ?? 0)))) ?? [];
  return rows.map((row) =>
    `  ${row.map((cell, col) => (col < row.length - 1 ? cell.padEnd(widths[col] ?? 0) : cell)).join('  ')}`.trimEnd(),
  );
}

/** Which commands a problem stops, when not all of them: a problem in a setting a command never reads only warns it. */
function stops(p: ConfigProblem): string {
  if (!p.key) return '';
  if (!settingsUsedBy('serve').has(p.key)) return '; no command uses it yet, so it stops none';
  if (!settingsUsedBy('mcp').has(p.key)) return '; it stops only brain serve, the one command that uses it';
  return '';
}

function problemLines(title: string, problems: readonly ConfigProblem[]): string[] {
  const lines = [`${problems.length} ${title}${problems.length === 1 ? '' : 's'}:`];
  const hint = title === 'problem' ? stops : () => '';
  for (const p of problems.map(maskedProblem)) lines.push(`  - ${p.message} (from ${p.source}${hint(p)})`);
  return lines;
}

/**
 * The report of `brain config check`: each setting with its env name, config-file key, effective value
 * and source; the files read; warnings; then every problem, or "No problems.".
 */
export function formatConfigReport(loaded: LoadedConfig, problems: readonly ConfigProblem[]): string {
  const config = loaded.config as unknown as Record<string, unknown>;
  const rows = [
    ['ENV', 'FILE KEY', 'VALUE', 'SOURCE'],
    ...SETTINGS.map((spec) => [
      spec.env,
      spec.key,
      displayValue(spec, config[spec.key]) || '(none)',
      loaded.sources[spec.key] ?? 'default',
    ]),
  ];
  const lines = [
    'Effective configuration (lowest first: default < config file < .env < environment)',
    '',
    ...table(rows),
    '',
    loaded.files.length > 0 ? `Files read: ${loaded.files.join(', ')}` : 'Files read: none',
    '',
  ];
  const { warnings } = loaded;
  if (warnings.length > 0) lines.push(...problemLines('warning', warnings), '');
  lines.push(...(problems.length === 0 ? ['No problems.'] : problemLines('problem', problems)));
  return lines.join('\n');
}

/** The same report for `--json`: settings by config key with env name, value and source; problems. */
export function configReportJson(loaded: LoadedConfig, problems: readonly ConfigProblem[]) {
  const config = loaded.config as unknown as Record<string, unknown>;
  const settings = Object.fromEntries(
    SETTINGS.map((spec) => [
      spec.key,
      {
        env: spec.env,
        value: maskedValue(spec, config[spec.key]) ?? null,
        source: loaded.sources[spec.key] ?? 'default',
      },
    ]),
  );
  return {
    ok: problems.length === 0,
    settings,
    files: loaded.files,
    warnings: loaded.warnings.map(maskedProblem),
    problems: problems.map(maskedProblem),
  };
}
