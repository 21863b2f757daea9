import { SETTINGS, type SettingSpec } from './config-schema.js';
import type { ConfigProblem, LoadedConfig } from './load-config.js';

const MASK = '****';
const SECRET_NAME = /secret|token|password|passwd|api[_-]?key|private[_-]?key|credential/i;

/** Whether a setting holds a secret: marked as one, or named like one (e.g. a future BRAIN_API_KEY). */
function isSecret(spec: SettingSpec): boolean {
  return spec.secret === true || SECRET_NAME.test(spec.key) || SECRET_NAME.test(spec.env);
}

/** Hides the password of a URL with credentials (postgres://user:pass@host → postgres://user:****@host). */
function maskUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)([^@\s]+)@/gi, `$1${MASK}@`);
}

/** URL passwords hidden in a string or in each string of a list. */
function maskValue(value: unknown): unknown {
  if (typeof value === 'string') return maskUrlCredentials(value);
  if (Array.isArray(value)) return value.map(maskValue);
  return value;
}

/** A setting's value as a report shows it: secrets masked, URL passwords hidden. */
export function displayValue(spec: SettingSpec, value: unknown): string {
  if (value === undefined || value === null || value === '') return '';
  if (isSecret(spec)) return MASK;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  return maskUrlCredentials(text);
}

/** The report of `brain config check`: each setting's env name, effective value and source, then problems. */
export function formatConfigReport(loaded: LoadedConfig, problems: readonly ConfigProblem[]): string {
  const config = loaded.config as unknown as Record<string, unknown>;
  const rows = SETTINGS.map((spec) => [
    spec.env,
    displayValue(spec, config[spec.key]) || '(none)',
    loaded.sources[spec.key] ?? 'default',
  ]);
  const width = Math.max(...rows.map((r) => (r[0] as string).length));
  const valueWidth = Math.min(60, Math.max(...rows.map((r) => (r[1] as string).length)));
  const lines = ['Effective configuration (lowest first: default < config file < .env < environment)', ''];
  for (const [env, value, source] of rows)
    lines.push(`  ${env?.padEnd(width)}  ${value?.padEnd(valueWidth)}  ${source}`);
  lines.push('', loaded.files.length > 0 ? `Files read: ${loaded.files.join(', ')}` : 'Files read: none');
  lines.push('');
  if (problems.length === 0) {
    lines.push('No problems.');
  } else {
    lines.push(`${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}:`);
    for (const p of problems) lines.push(`  - ${maskUrlCredentials(p.message)} (from ${p.source})`);
  }
  return lines.join('\n');
}

/** The same report for `--json`: settings by config key with env name, value and source; problems. */
export function configReportJson(loaded: LoadedConfig, problems: readonly ConfigProblem[]) {
  const config = loaded.config as unknown as Record<string, unknown>;
  const settings = Object.fromEntries(
    SETTINGS.map((spec) => {
      const value = config[spec.key];
      const shown = isSecret(spec) ? MASK : maskValue(value);
      return [spec.key, { env: spec.env, value: shown, source: loaded.sources[spec.key] ?? 'default' }];
    }),
  );
  return {
    ok: problems.length === 0,
    settings,
    files: loaded.files,
    problems: problems.map((p) => ({ ...p, message: maskUrlCredentials(p.message) })),
  };
}
