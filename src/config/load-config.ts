import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { BrainError } from '../core/errors.js';
import {
  type BrainConfig,
  type BrainConfigInput,
  brainConfigInputSchema,
  DEFAULT_HOME,
  DERIVED_PATHS,
  SETTINGS,
  type SettingSpec,
} from './config-schema.js';

/** One thing wrong with the configuration, named by the setting as the user wrote it. */
export interface ConfigProblem {
  /** `BRAIN_PORT` when it came from the environment or .env, `port` from a config file, or a path. */
  setting: string;
  /** `env`, `.env`, the config file's path, or `paths`. */
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
  /** Setting key → where its value came from: `default`, `env`, `.env`, a file path, or `BRAIN_HOME`. */
  sources: Record<string, string>;
  /** Files read (config file, .env). */
  files: string[];
}

type RawValue = unknown;
interface Layer {
  source: string;
  /** Values by setting key, and the name the user gave each one (env var or file key). */
  values: Map<string, { raw: RawValue; name: string }>;
}

const SPEC_BY_ENV = new Map(SETTINGS.map((s) => [s.env, s]));
const SPEC_BY_KEY = new Map(SETTINGS.map((s) => [s.key as string, s]));

/**
 * Text from the environment, typed for the schema. Values that do not convert are passed on as text so
 * that the schema's message (with the limit) names the problem.
 */
function fromText(spec: SettingSpec, text: string): RawValue {
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
      return value === ''
        ? []
        : value
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s.length > 0);
    default:
      return value;
  }
}

function envLayer(source: string, vars: Record<string, string | undefined>): Layer {
  const values: Layer['values'] = new Map();
  for (const [name, text] of Object.entries(vars)) {
    const spec = SPEC_BY_ENV.get(name);
    if (spec && text !== undefined && text !== '') values.set(spec.key, { raw: fromText(spec, text), name });
  }
  return { source, values };
}

function readConfigFile(file: string, problems: ConfigProblem[]): Layer | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code
          ? `cannot read it (${code})`
          : `invalid JSON: ${(error as Error).message}`;
    problems.push({ setting: 'config file', source: file, message: `${file}: ${why}` });
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push({
      setting: 'config file',
      source: file,
      message: `${file}: expected a JSON object of settings`,
    });
    return null;
  }
  const values: Layer['values'] = new Map();
  for (const [key, raw] of Object.entries(parsed)) {
    if (!SPEC_BY_KEY.has(key)) {
      const known = SETTINGS.map((s) => s.key).join(', ');
      problems.push({ setting: key, source: file, message: `${key}: unknown setting (known: ${known})` });
      continue;
    }
    values.set(key, { raw, name: key });
  }
  return { source: file, values };
}

function readDotEnv(file: string, problems: ConfigProblem[]): Record<string, string> | null {
  if (!fs.existsSync(file)) return null;
  try {
    return parseEnv(fs.readFileSync(file, 'utf8')) as Record<string, string>;
  } catch (error) {
    problems.push({
      setting: '.env',
      source: file,
      message: `${file}: cannot read it (${(error as Error).message})`,
    });
    return null;
  }
}

/** The config file to read: --config, else BRAIN_CONFIG, else ./brain.config.json if it exists. */
function configFileOf(options: LoadConfigOptions, env: NodeJS.ProcessEnv, cwd: string): string | null {
  const explicit = options.configPath ?? env.BRAIN_CONFIG;
  if (explicit) return path.resolve(cwd, explicit);
  const fallback = path.join(cwd, 'brain.config.json');
  return fs.existsSync(fallback) ? fallback : null;
}

function expandPath(value: string, cwd: string): string {
  const home = value === '~' || value.startsWith('~/') ? path.join(os.homedir(), value.slice(1)) : value;
  return path.resolve(cwd, home);
}

/**
 * Validates one setting from its highest layer. A bad value becomes a problem that names the setting as
 * the user wrote it, the limit and what was given; the setting then keeps its default.
 */
function resolveSetting(
  key: string,
  layers: Layer[],
  problems: ConfigProblem[],
  sources: Record<string, string>,
): unknown {
  const field = brainConfigInputSchema.shape[key as keyof BrainConfigInput];
  for (const layer of [...layers].reverse()) {
    const given = layer.values.get(key);
    if (!given) continue;
    const result = field.safeParse(given.raw);
    if (result.success) {
      sources[key] = layer.source;
      return result.data;
    }
    const message = result.error.issues[0]?.message ?? 'invalid value';
    problems.push({
      setting: given.name,
      source: layer.source,
      message: `${given.name}: ${message}, got ${JSON.stringify(given.raw)}`,
    });
    break;
  }
  sources[key] = 'default';
  return field.parse(undefined);
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
  const files: string[] = [];
  const layers: Layer[] = [];

  const configFile = configFileOf(options, env, cwd);
  if (configFile) {
    const layer = readConfigFile(configFile, problems);
    if (layer) {
      layers.push(layer);
      files.push(configFile);
    }
  }
  const dotEnvFile = path.join(cwd, '.env');
  const dotEnv = readDotEnv(dotEnvFile, problems);
  if (dotEnv) {
    // A variable set in the real environment wins over the same one in .env.
    const onlyFile = Object.fromEntries(Object.entries(dotEnv).filter(([name]) => env[name] === undefined));
    layers.push(envLayer('.env', onlyFile));
    files.push(dotEnvFile);
  }
  layers.push(envLayer('env', env));

  const sources: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  for (const spec of SETTINGS) values[spec.key] = resolveSetting(spec.key, layers, problems, sources);

  const home = expandPath((values.home as string | undefined) ?? DEFAULT_HOME, cwd);
  const config = { ...values, home } as BrainConfig;
  for (const [key, relative] of Object.entries(DERIVED_PATHS) as [keyof typeof DERIVED_PATHS, string][]) {
    const given = values[key] as string | undefined;
    config[key] = given ? expandPath(given, cwd) : path.join(home, relative);
    if (!given) sources[key] = sources.home === 'default' ? 'default' : `BRAIN_HOME (${sources.home})`;
  }
  if (config.workerMin > config.workerMax) {
    problems.push({
      setting: 'BRAIN_WORKER_MIN',
      source: sources.workerMin ?? 'default',
      message: `BRAIN_WORKER_MIN (${config.workerMin}) must not exceed BRAIN_WORKER_MAX (${config.workerMax})`,
    });
  }
  return { config, problems, sources, files };
}

/** The nearest existing ancestor of `target`, and whether it is a directory. */
function nearestExisting(target: string): { dir: string; isDir: boolean } {
  let current = target;
  for (;;) {
    try {
      return { dir: current, isDir: fs.statSync(current).isDirectory() };
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return { dir: current, isDir: false };
      current = parent;
    }
  }
}

/** Whether a directory could be created or written at `dir` (nothing is created). */
function directoryProblem(dir: string): string | null {
  const existing = nearestExisting(dir);
  if (!existing.isDir) return `${existing.dir} is not a directory, so ${dir} cannot be created`;
  try {
    fs.accessSync(existing.dir, fs.constants.W_OK);
    return null;
  } catch {
    return `${existing.dir} is not writable`;
  }
}

/**
 * Checks that every path can be used: the database's directory (and the file, if it exists) is
 * writable, and the other directories exist or can be created. Creates nothing.
 */
export function checkPaths(config: BrainConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (setting: string, message: string | null) => {
    if (message) problems.push({ setting, source: 'paths', message: `${setting}: ${message}` });
  };
  try {
    const stat = fs.statSync(config.dbPath);
    if (stat.isDirectory()) add('BRAIN_DB_PATH', `${config.dbPath} is a directory; give a file path`);
    else fs.accessSync(config.dbPath, fs.constants.R_OK | fs.constants.W_OK);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      add('BRAIN_DB_PATH', directoryProblem(path.dirname(config.dbPath)));
    else add('BRAIN_DB_PATH', `${config.dbPath} is not readable and writable (${code})`);
  }
  const dirs: [string, string][] = [
    ['BRAIN_BACKUP_PATH', config.backupPath],
    ['BRAIN_LOG_PATH', config.logPath],
    ['BRAIN_EXECUTION_PATH', config.executionPath],
    ['BRAIN_NOTES_PATH', config.notesPath],
  ];
  for (const [setting, dir] of dirs) add(setting, directoryProblem(dir));
  return problems;
}

/** The config, or CONFIG_ERROR listing every problem: how the server and commands refuse to start. */
export function requireValidConfig(loaded: LoadedConfig): BrainConfig {
  if (loaded.problems.length === 0) return loaded.config;
  const list = loaded.problems.map((p) => `  ${p.message} (from ${p.source})`).join('\n');
  throw new BrainError(
    'CONFIG_ERROR',
    `invalid configuration:\n${list}\nrun \`brain config check\` for the full report`,
    {
      problems: loaded.problems,
    },
  );
}
