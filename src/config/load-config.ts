import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { BrainError } from '../core/errors.js';
import {
  type BrainConfig,
  type BrainSettings,
  brainSettingsSchema,
  isSecretSetting,
  MASK,
  maskUrlCredentials,
  resolvePaths,
  SETTINGS,
  type SettingKey,
  type SettingSpec,
  settingSchema,
} from './config-schema.js';

/** One thing wrong with the configuration, named as the user wrote it. */
export interface ConfigProblem {
  /** `BRAIN_PORT` from the environment or .env, `port` from a config file, `config file`, or `.env`. */
  setting: string;
  /** `env`, `.env`, the config file's path, `default`, or `filesystem` (from {@link checkPaths}). */
  source: string;
  message: string;
}

export interface LoadConfigOptions {
  /** `--config`: an explicit config file; it must exist. */
  configPath?: string;
  /** The environment to read; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where relative paths, `.env` and `brain.config.json` are looked up; defaults to process.cwd(). */
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
}

const SPEC_BY_ENV = new Map(SETTINGS.map((s) => [s.env, s]));
const SPEC_BY_KEY = new Map<string, SettingSpec>(SETTINGS.map((s) => [s.key, s]));
/** BRAIN_* variables that are read but are not settings. */
const OTHER_BRAIN_VARIABLES = new Set(['BRAIN_CONFIG']);

/**
 * Environment text, typed for the schema. Text that does not convert is passed on unchanged so that the
 * schema's message (with the limit) names the problem.
 */
function fromText(spec: SettingSpec, text: string): unknown {
  const value = text.trim();
  switch (spec.kind) {
    case 'int':
      return /^-?\d+$/.test(value) ? Number(value) : value;
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
const FILE_KEYS = SETTINGS.map((s) => s.key);

/** Environment variables (real or from .env) as a layer; unknown BRAIN_* names become warnings. */
function envLayer(source: string, vars: Record<string, string | undefined>, warnings: ConfigProblem[]) {
  const values: Layer['values'] = new Map();
  for (const [name, text] of Object.entries(vars)) {
    const spec = SPEC_BY_ENV.get(name);
    // An empty variable counts as unset, so `BRAIN_PORT=` falls back to the layers below.
    if (spec && text !== undefined && text !== '') values.set(spec.key, { raw: fromText(spec, text), name });
    if (!spec && name.startsWith('BRAIN_') && !OTHER_BRAIN_VARIABLES.has(name)) {
      const guess = closest(name, ENV_NAMES);
      const hint = guess ? `; did you mean ${guess}?` : '; see docs/CONFIG.md';
      warnings.push({ setting: name, source, message: `${name}: not a Brain setting, ignored${hint}` });
    }
  }
  return { source, values };
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
  return { source: file, values };
}

function readDotEnv(file: string, problems: ConfigProblem[]): Record<string, string> | null {
  if (!fs.existsSync(file)) return null;
  try {
    return parseEnv(fs.readFileSync(file, 'utf8')) as Record<string, string>;
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    problems.push({ setting: '.env', source: file, message: `${file}: cannot read it (${why})` });
    return null;
  }
}

/** The config file to read: --config, else BRAIN_CONFIG, else ./brain.config.json if it exists. */
function configFileOf(explicit: string | undefined, cwd: string): string | null {
  if (explicit) return path.resolve(cwd, explicit);
  const fallback = path.join(cwd, 'brain.config.json');
  return fs.existsSync(fallback) ? fallback : null;
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
    if (result.success) return { value: result.data, source: layer.source, name: given.name };
    const message = result.error.issues[0]?.message ?? 'invalid value';
    problems.push({
      setting: given.name,
      source: layer.source,
      message: `${given.name}: ${message}, got ${shown(spec, given.raw)}`,
    });
    break;
  }
  return { value: schema.parse(undefined), source: 'default', name: spec.env };
}

/**
 * Loads the configuration. Sources, lowest first: defaults, the config file, `.env`, the environment.
 * Never throws for a bad value: every problem is collected (`brain config check` prints them all) and the
 * setting keeps its default. Use {@link requireValidConfig} to refuse to start on any problem.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const files: string[] = [];
  const layers: Layer[] = [];

  const dotEnvFile = path.join(cwd, '.env');
  const dotEnv = readDotEnv(dotEnvFile, problems);
  const configFile = configFileOf(options.configPath || env.BRAIN_CONFIG || dotEnv?.BRAIN_CONFIG, cwd);
  if (configFile) {
    const layer = readConfigFile(configFile, problems);
    if (layer) {
      layers.push(layer);
      files.push(configFile);
    }
  }
  if (dotEnv) {
    layers.push(envLayer('.env', dotEnv, warnings));
    files.push(dotEnvFile);
  }
  // The real environment is the top layer, so .env never overrides a variable set there.
  layers.push(envLayer('env', env, warnings));

  const sources: Record<string, string> = {};
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    const resolved = resolveSetting(spec, layers, problems);
    values[spec.key] = resolved.value;
    sources[spec.key] = resolved.source;
    names[spec.key] = resolved.name;
  }

  // Each value is valid on its own by now; what remains are rules between settings (workerMin ≤ workerMax).
  const whole = brainSettingsSchema.safeParse(values);
  for (const issue of whole.error?.issues ?? []) {
    const key = String(issue.path[0] ?? '');
    const name = names[key] ?? key;
    problems.push({ setting: name, source: sources[key] ?? 'default', message: `${name}: ${issue.message}` });
  }
  const config = resolvePaths((whole.data ?? values) as BrainSettings, cwd);
  for (const spec of SETTINGS) {
    if (spec.kind === 'path' && spec.key !== 'home' && values[spec.key] === undefined) {
      sources[spec.key] = sources.home === 'default' ? 'default' : `BRAIN_HOME (${sources.home})`;
    }
  }
  return { config, problems, warnings, sources, files };
}

/** Whether this process may create entries in `dir`. */
function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The nearest existing ancestor of `target` (or `target` itself), and whether it is a directory. */
function nearestExisting(target: string): { at: string; isDir: boolean } {
  let current = target;
  for (;;) {
    try {
      return { at: current, isDir: fs.statSync(current).isDirectory() };
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return { at: current, isDir: false };
      current = parent;
    }
  }
}

/** Why a directory could not be used or created at `dir`, or null if it can. */
function directoryProblem(dir: string): string | null {
  const { at, isDir } = nearestExisting(dir);
  if (!isDir)
    return at === dir ? `${dir} is not a directory` : `${at} is not a directory, so ${dir} cannot be created`;
  if (writable(at)) return null;
  return at === dir ? `${dir} is not writable` : `${at} is not writable, so ${dir} cannot be created`;
}

/** Why the database file could not be opened for writing, or null if it can. */
function databaseProblem(file: string): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return directoryProblem(path.dirname(file));
    return `cannot inspect ${file} (${code})`;
  }
  if (stat.isDirectory()) return `${file} is a directory; give the path of the database file`;
  try {
    fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return `${file} is not readable and writable by this user`;
  }
  // SQLite creates the -wal and -shm files beside the database, so its directory must be writable too.
  const dir = path.dirname(file);
  return writable(dir) ? null : `${dir} is not writable (SQLite keeps ${path.basename(file)}-wal there)`;
}

/**
 * Checks that every path can be used: the database file (or, if it does not exist yet, its directory)
 * is readable and writable, and the other directories exist or can be created. Creates nothing.
 */
export function checkPaths(config: BrainConfig): ConfigProblem[] {
  const checks: [string, string | null][] = [
    ['BRAIN_DB_PATH', databaseProblem(config.dbPath)],
    ['BRAIN_BACKUP_PATH', directoryProblem(config.backupPath)],
    ['BRAIN_LOG_PATH', directoryProblem(config.logPath)],
    ['BRAIN_EXECUTION_PATH', directoryProblem(config.executionPath)],
    ['BRAIN_NOTES_PATH', directoryProblem(config.notesPath)],
  ];
  return checks.flatMap(([setting, message]) =>
    message ? [{ setting, source: 'filesystem', message: `${setting}: ${message}` }] : [],
  );
}

/** The config, or CONFIG_ERROR listing every problem: how the server and commands refuse to start. */
export function requireValidConfig(loaded: LoadedConfig): BrainConfig {
  const { problems } = loaded;
  if (problems.length === 0) return loaded.config;
  const list = problems.map((p) => `  ${p.message} (from ${p.source})`).join('\n');
  throw new BrainError(
    'CONFIG_ERROR',
    `invalid configuration (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n${list}\nrun \`brain config check\` for the full report`,
    { issues: problems.map((p) => ({ field: p.setting, message: p.message })), problems },
  );
}
