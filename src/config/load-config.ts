import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { BrainError } from '../core/errors.js';
import {
  absolutePath,
  type BrainConfig,
  type BrainSettings,
  brainSettingsSchema,
  defaultHome,
  isSecretSetting,
  MASK,
  maskUrlCredentials,
  resolvePaths,
  SETTINGS,
  type SettingKey,
  type SettingSpec,
  settingSchema,
  settingWarning,
} from './config-schema.js';

/** One thing wrong with the configuration, named as the user wrote it. */
export interface ConfigProblem {
  /** `BRAIN_PORT` from the environment or .env, `port` from a config file, `config file`, or `.env`. */
  setting: string;
  /** `env`, `.env`, the config file's path, `default`, or `filesystem` (from {@link checkPaths}). */
  source: string;
  message: string;
  /**
   * The setting the problem is in. Without one (a config file that cannot be read, an unknown key) the
   * problem concerns every command; with one, only the commands that use that setting.
   */
  key?: SettingKey;
}

export interface LoadConfigOptions {
  /** `--config`: an explicit config file; it must exist. */
  configPath?: string;
  /** `--env-file`: an explicit `.env` instead of `$BRAIN_HOME/.env`; it must exist. */
  envFile?: string;
  /** The environment to read; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * What relative paths in the environment and a relative `--config`/`--env-file` resolve against;
   * defaults to process.cwd(). Files are never looked up here: the working directory belongs to
   * whatever project Brain was started in.
   */
  cwd?: string;
}

export interface LoadedConfig {
  config: BrainConfig;
  problems: ConfigProblem[];
  /** Unknown BRAIN_* variables: shown by `brain config check`, never a reason to refuse to start. */
  warnings: ConfigProblem[];
  /** Setting key → where its value came from: `default`, `env`, `.env`, a file path, or `BRAIN_HOME (…)`. */
  sources: Record<string, string>;
  /** Files read (config file, .env). */
  files: string[];
}

/** A value from one source, with the name the user gave it (env variable or file key). */
interface Given {
  raw: unknown;
  name: string;
}

interface Layer {
  source: string;
  values: Map<SettingKey, Given>;
  /** What a relative path in this layer is relative to: the file's directory, or the working directory. */
  base: string;
}

const SPEC_BY_ENV = new Map(SETTINGS.map((s) => [s.env, s]));
const SPEC_BY_KEY = new Map<string, SettingSpec>(SETTINGS.map((s) => [s.key, s]));
/** BRAIN_* variables that are read but are not settings. */
const OTHER_BRAIN_VARIABLES = new Set(['BRAIN_CONFIG', 'BRAIN_ENV_FILE']);

/**
 * Environment text, typed for the schema. Text that does not convert is passed on unchanged so that the
 * schema's message (with the limit) names the problem.
 */
function fromText(spec: SettingSpec, text: string): unknown {
  const value = text.trim();
  switch (spec.kind) {
    case 'int':
      return /^-?\d+$/.test(value) ? Number(value) : value;
    case 'number':
      return /^-?(\d+\.?\d*|\.\d+)$/.test(value) ? Number(value) : value;
    case 'bool': {
      const lower = value.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(lower)) return true;
      if (['false', '0', 'no', 'off'].includes(lower)) return false;
      return value;
    }
    case 'list':
      return value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    default:
      return value;
  }
}

/** Edit distance, for suggesting the setting a typo meant. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost);
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

/** The known name a misspelt one most likely meant, or nothing if none is close. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 4)) + 1;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

const ENV_NAMES = [...SPEC_BY_ENV.keys(), ...OTHER_BRAIN_VARIABLES];

/** Variables an earlier build read, with the name that took their place. */
const RENAMED_VARIABLES: Readonly<Record<string, string>> = { BRAIN_RECALL_CACHE_MB: 'BRAIN_CACHE_SIZE_MB' };
const FILE_KEYS = SETTINGS.map((s) => s.key);

/** Environment variables (real or from .env) as a layer; unknown BRAIN_* names become warnings. */
function envLayer(
  source: string,
  base: string,
  vars: Record<string, string | undefined>,
  warnings: ConfigProblem[],
): Layer {
  const values: Layer['values'] = new Map();
  for (const [name, text] of Object.entries(vars)) {
    const spec = SPEC_BY_ENV.get(name);
    // An empty variable counts as unset, so `BRAIN_PORT=` falls back to the layers below.
    if (spec && text !== undefined && text !== '') values.set(spec.key, { raw: fromText(spec, text), name });
    const renamed = RENAMED_VARIABLES[name];
    const successor = renamed === undefined ? undefined : SPEC_BY_ENV.get(renamed);
    if (!spec && renamed && successor) {
      // Read as the new name unless that is given too (then the new one wins).
      const given = vars[renamed] !== undefined && vars[renamed] !== '';
      if (!given && text !== undefined && text !== '')
        values.set(successor.key, { raw: fromText(successor, text), name });
      warnings.push({
        setting: name,
        source,
        message: `${name}: renamed ${renamed}; ${given ? 'ignored, as that is set' : `read as ${renamed}`}: rename it`,
      });
    } else if (!spec && name.startsWith('BRAIN_') && !OTHER_BRAIN_VARIABLES.has(name)) {
      const guess = closest(name, ENV_NAMES);
      const hint = guess ? `; did you mean ${guess}?` : '; see docs/CONFIG.md';
      warnings.push({ setting: name, source, message: `${name}: not a Brain setting, ignored${hint}` });
    }
  }
  return { source, values, base };
}

function unknownKeyMessage(key: string): string {
  const asEnv = SPEC_BY_ENV.get(key);
  if (asEnv) return `${key}: unknown setting; a config file uses the key ${asEnv.key}`;
  const guess = closest(key, FILE_KEYS);
  return guess
    ? `${key}: unknown setting; did you mean ${guess}?`
    : `${key}: unknown setting (known: ${FILE_KEYS.join(', ')})`;
}

function readConfigFile(file: string, problems: ConfigProblem[]): Layer | null {
  const fail = (why: string) => {
    problems.push({ setting: 'config file', source: file, message: `${file}: ${why}` });
    return null;
  };
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? 'file not found' : `cannot read it (${code ?? String(error)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(`invalid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return fail('expected a JSON object of settings, e.g. {"port": 8080}');
  }
  const values: Layer['values'] = new Map();
  for (const [key, raw] of Object.entries(parsed)) {
    const spec = SPEC_BY_KEY.get(key);
    if (spec) values.set(spec.key, { raw, name: key });
    else problems.push({ setting: key, source: file, message: unknownKeyMessage(key) });
  }
  return { source: file, values, base: path.dirname(file) };
}

/** A `.env` file's variables; null when it is absent (a problem only when it was asked for explicitly). */
function readDotEnv(
  file: string,
  explicit: boolean,
  problems: ConfigProblem[],
): Record<string, string> | null {
  if (!fs.existsSync(file)) {
    if (explicit) problems.push({ setting: '.env', source: file, message: `${file}: file not found` });
    return null;
  }
  try {
    return parseEnv(fs.readFileSync(file, 'utf8')) as Record<string, string>;
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    problems.push({ setting: '.env', source: file, message: `${file}: cannot read it (${why})` });
    return null;
  }
}

/** A `.env` named by `--env-file` or `BRAIN_ENV_FILE`, and its variables. */
interface ExplicitEnv {
  file: string;
  vars: Record<string, string>;
}

/**
 * Where Brain's own files are looked up: `BRAIN_HOME` from the environment (or from an explicit
 * `--env-file`), else `~/.brain`. Never from `$BRAIN_HOME/.env`, which is found through it.
 */
function lookupHome(env: NodeJS.ProcessEnv, cwd: string, explicitEnv: ExplicitEnv | null): string {
  if (env.BRAIN_HOME?.trim()) return absolutePath(env.BRAIN_HOME.trim(), cwd);
  const fromFile = explicitEnv?.vars.BRAIN_HOME?.trim();
  if (explicitEnv && fromFile) return absolutePath(fromFile, path.dirname(explicitEnv.file));
  return defaultHome();
}

/** A given value as a problem message may show it: never a secret, never a URL's password. */
function shown(spec: SettingSpec, raw: unknown): string {
  if (isSecretSetting(spec)) return MASK;
  const text = JSON.stringify(raw) ?? String(raw);
  return maskUrlCredentials(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/**
 * One setting from the highest layer that gives it. A bad value becomes a problem naming the setting as
 * the user wrote it, the limit and what was given; the setting then keeps its default rather than
 * falling through to a lower layer, so that what runs is never a value the user tried to replace.
 */
function resolveSetting(spec: SettingSpec, layers: readonly Layer[], problems: ConfigProblem[]) {
  const schema = settingSchema(spec.key);
  for (const layer of [...layers].reverse()) {
    const given = layer.values.get(spec.key);
    if (!given) continue;
    const result = schema.safeParse(given.raw);
    if (result.success) {
      // A relative path means relative to the file it is written in (the working directory for the env).
      const value =
        spec.kind === 'path' && typeof result.data === 'string'
          ? absolutePath(result.data, layer.base)
          : result.data;
      return { value, source: layer.source, name: given.name };
    }
    const message = result.error.issues[0]?.message ?? 'invalid value';
    problems.push({
      setting: given.name,
      source: layer.source,
      message: `${given.name}: ${message}, got ${shown(spec, given.raw)}`,
      key: spec.key,
    });
    break;
  }
  return { value: schema.parse(undefined), source: 'default', name: spec.env };
}

/**
 * The `.env` to read and its variables: `--env-file`, else `BRAIN_ENV_FILE`, else `$BRAIN_HOME/.env`
 * if it exists. `BRAIN_HOME` in the last one is ignored with a warning: it cannot move the directory
 * it was found in.
 */
function readEnvFile(
  options: LoadConfigOptions,
  env: NodeJS.ProcessEnv,
  cwd: string,
  problems: ConfigProblem[],
) {
  const explicitName = options.envFile || env.BRAIN_ENV_FILE;
  if (explicitName) {
    const file = path.resolve(cwd, explicitName);
    const vars = readDotEnv(file, true, problems);
    return { file, vars, home: lookupHome(env, cwd, vars ? { file, vars } : null), ignored: [] };
  }
  const home = lookupHome(env, cwd, null);
  const file = path.join(home, '.env');
  const vars = readDotEnv(file, false, problems);
  const ignored: ConfigProblem[] = [];
  if (vars?.BRAIN_HOME) {
    ignored.push({
      setting: 'BRAIN_HOME',
      source: file,
      message: `BRAIN_HOME: ignored in ${file}, which is found through BRAIN_HOME; set it in the environment or use --env-file`,
    });
    delete vars.BRAIN_HOME;
  }
  return { file, vars, home, ignored };
}

/** The config file to read: --config, else BRAIN_CONFIG, else `$BRAIN_HOME/brain.config.json` if it exists. */
function configFileOf(explicit: string | undefined, base: string, home: string): string | null {
  if (explicit) return path.resolve(base, explicit);
  const fallback = path.join(home, 'brain.config.json');
  return fs.existsSync(fallback) ? fallback : null;
}

/**
 * Loads the configuration. Sources, lowest first: defaults, the config file, `.env`, the environment.
 * Brain's files come from `BRAIN_HOME` (or `--config`/`--env-file`), never from the working directory.
 * Never throws for a bad value: every problem is collected (`brain config check` prints them all) and the
 * setting keeps its default. Use {@link requireValidConfig} to refuse to start on a problem.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const files: string[] = [];
  const layers: Layer[] = [];

  const dotEnv = readEnvFile(options, env, cwd, problems);
  warnings.push(...dotEnv.ignored);
  // BRAIN_CONFIG may come from .env: then a relative one is relative to that file.
  const configFile = options.configPath
    ? configFileOf(options.configPath, cwd, dotEnv.home)
    : env.BRAIN_CONFIG
      ? configFileOf(env.BRAIN_CONFIG, cwd, dotEnv.home)
      : configFileOf(dotEnv.vars?.BRAIN_CONFIG, path.dirname(dotEnv.file), dotEnv.home);
  if (configFile) {
    const layer = readConfigFile(configFile, problems);
    if (layer) {
      layers.push(layer);
      files.push(configFile);
    }
  }
  if (dotEnv.vars) {
    layers.push(envLayer('.env', path.dirname(dotEnv.file), dotEnv.vars, warnings));
    files.push(dotEnv.file);
  }
  // The real environment is the top layer, so .env never overrides a variable set there.
  layers.push(envLayer('env', cwd, env, warnings));

  const sources: Record<string, string> = {};
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    const resolved = resolveSetting(spec, layers, problems);
    values[spec.key] = resolved.value;
    sources[spec.key] = resolved.source;
    names[spec.key] = resolved.name;
    const warning = settingWarning(spec.key, resolved.value);
    if (warning)
      warnings.push({ setting: resolved.name, source: resolved.source, message: warning, key: spec.key });
  }

  // Each value is valid on its own by now; what remains are rules between settings (workerMin ≤ workerMax).
  const whole = brainSettingsSchema.safeParse(values);
  for (const issue of whole.error?.issues ?? []) {
    const key = String(issue.path[0] ?? '');
    const name = names[key] ?? key;
    const spec = SPEC_BY_KEY.get(key);
    problems.push({
      setting: name,
      source: sources[key] ?? 'default',
      message: `${name}: ${issue.message}`,
      ...(spec ? { key: spec.key } : {}),
    });
  }
  const config = resolvePaths((whole.data ?? values) as BrainSettings, cwd);
  for (const spec of SETTINGS) {
    if (spec.kind === 'path' && spec.key !== 'home' && values[spec.key] === undefined) {
      sources[spec.key] = sources.home === 'default' ? 'default' : `BRAIN_HOME (${sources.home})`;
    }
  }
  return { config, problems, warnings, sources, files };
}

/** An entry point, by the settings it reads: `serve` (HTTP), `mcp` (stdio), `cli` (the data commands). */
export type ConfigUser = 'serve' | 'mcp' | 'cli';

/**
 * The settings an entry point uses: every setting in use today (reserved ones are used by none yet),
 * without the HTTP-only ones (`httpSetting` in config-schema.ts) except for `serve`. A problem in any other setting only warns that entry point.
 */
export function settingsUsedBy(user: ConfigUser): ReadonlySet<SettingKey> {
  return new Set(SETTINGS.filter((s) => !s.reserved && (user === 'serve' || !s.httpOnly)).map((s) => s.key));
}

/**
 * The problems that stop a command using `uses` (all settings when omitted), and those it only warns
 * about: a problem in a setting it never reads. A problem not tied to one setting always stops it.
 */
export function splitProblems(loaded: Pick<LoadedConfig, 'problems'>, uses?: ReadonlySet<SettingKey>) {
  const blocking: ConfigProblem[] = [];
  const ignored: ConfigProblem[] = [];
  for (const p of loaded.problems) (!uses || !p.key || uses.has(p.key) ? blocking : ignored).push(p);
  return { blocking, ignored };
}

/**
 * What a command using `uses` logs as warnings when it starts: the configuration's warnings, and each
 * problem in a setting it does not use (`brain config check` still reports those as problems).
 */
export function startupWarnings(loaded: LoadedConfig, uses: ReadonlySet<SettingKey>): ConfigProblem[] {
  const ignored = splitProblems(loaded, uses).ignored.map((p) => ({
    ...p,
    message: `${p.message} (not used by this command, so ignored; \`brain config check\` reports it)`,
  }));
  return [...loaded.warnings, ...ignored];
}

/**
 * The config, or CONFIG_ERROR listing every problem that concerns the settings in `uses` (every
 * problem when omitted): how the server and commands refuse to start.
 */
export function requireValidConfig(loaded: LoadedConfig, uses?: ReadonlySet<SettingKey>): BrainConfig {
  const problems = splitProblems(loaded, uses).blocking;
  if (problems.length === 0) return loaded.config;
  const list = problems.map((p) => `  ${p.message} (from ${p.source})`).join('\n');
  throw new BrainError(
    'CONFIG_ERROR',
    `invalid configuration (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n${list}\nrun \`brain config check\` for the full report`,
    { issues: problems.map((p) => ({ field: p.setting, message: p.message })), problems },
  );
}
