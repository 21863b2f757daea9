import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Log levels pino knows, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const NODE_ENVS = ['development', 'production', 'test'] as const;
export const EMBEDDERS = ['hash', 'none'] as const;

type Kind = 'path' | 'int' | 'bool' | 'list' | 'enum' | 'string';

/** One setting: its config-file key, its environment variable, and how to read it from text. */
export interface SettingSpec {
  key: keyof BrainConfigInput;
  env: string;
  kind: Kind;
  description: string;
  /** Marks a value that must be masked in reports. */
  secret?: boolean;
}

const intIn = (min: number, max: number) =>
  z
    .number({ error: `expected an integer between ${min} and ${max}` })
    .int({ message: `expected an integer between ${min} and ${max}` })
    .min(min, { message: `expected an integer between ${min} and ${max}` })
    .max(max, { message: `expected an integer between ${min} and ${max}` });

const pathSetting = z
  .string({ error: 'expected a path' })
  .trim()
  .min(1, { message: 'expected a non-empty path' });

const hostList = z.array(
  z
    .string({ error: 'expected a list of names' })
    .trim()
    .min(1, { message: 'expected non-empty names' })
    .max(255, { message: 'each name must be at most 255 characters' }),
  { error: 'expected a list of strings (comma-separated in the environment)' },
);

/**
 * Every setting of Brain, as given by a user (config file keys; env values already converted). Paths are
 * optional here: the ones not given derive from `home`.
 */
export const brainConfigInputSchema = z
  .object({
    home: pathSetting.optional(),
    dbPath: pathSetting.optional(),
    backupPath: pathSetting.optional(),
    logPath: pathSetting.optional(),
    executionPath: pathSetting.optional(),
    notesPath: pathSetting.optional(),
    maxMemoryMb: intIn(64, 65536).default(512),
    maxExecutionTimeMs: intIn(100, 600_000).default(30_000),
    maxOutputSizeMb: intIn(1, 1024).default(10),
    workerMin: intIn(0, 64).default(1),
    workerMax: intIn(1, 64).default(4),
    cacheSizeMb: intIn(1, 4096).default(64),
    vacuumIntervalHours: intIn(0, 8760).default(24),
    metricsPort: intIn(0, 65535).default(9090),
    healthCheckIntervalMs: intIn(1000, 3_600_000).default(30_000),
    logLevel: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
    nodeEnv: z.enum(NODE_ENVS, { error: `expected one of ${NODE_ENVS.join(', ')}` }).default('production'),
    host: z.string({ error: 'expected a host name or address' }).trim().min(1).max(255).default('127.0.0.1'),
    port: intIn(0, 65535).default(7777),
    allowedHosts: hostList.default([]),
    allowedOrigins: hostList.default([]),
    migrateOnStart: z.boolean({ error: 'expected true or false' }).default(true),
    busyTimeoutMs: intIn(0, 600_000).default(5000),
    embedder: z.enum(EMBEDDERS, { error: `expected one of ${EMBEDDERS.join(', ')}` }).default('hash'),
    defaultTenant: z
      .string({ error: 'expected a tenant id' })
      .regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'expected 1-64 letters, digits, _ or -' })
      .default('default'),
  })
  .strict();

export type BrainConfigInput = z.input<typeof brainConfigInputSchema>;

/** The effective configuration: every setting present, every path absolute. */
export interface BrainConfig extends Omit<z.output<typeof brainConfigInputSchema>, 'home' | PathKey> {
  home: string;
  dbPath: string;
  backupPath: string;
  logPath: string;
  executionPath: string;
  notesPath: string;
}

type PathKey = 'dbPath' | 'backupPath' | 'logPath' | 'executionPath' | 'notesPath';

/** Where each path goes under BRAIN_HOME when it is not given. */
export const DERIVED_PATHS: Record<PathKey, string> = {
  dbPath: path.join('data', 'brain.db'),
  backupPath: 'backups',
  logPath: 'logs',
  executionPath: 'execution',
  notesPath: 'notes',
};

export const DEFAULT_HOME = path.join(os.homedir(), '.brain');

/** Every setting, in the order reports and docs list them. */
export const SETTINGS: readonly SettingSpec[] = [
  { key: 'home', env: 'BRAIN_HOME', kind: 'path', description: 'root of every path not given' },
  { key: 'dbPath', env: 'BRAIN_DB_PATH', kind: 'path', description: 'SQLite database file' },
  { key: 'backupPath', env: 'BRAIN_BACKUP_PATH', kind: 'path', description: 'backup directory (reserved)' },
  { key: 'logPath', env: 'BRAIN_LOG_PATH', kind: 'path', description: 'log directory (reserved)' },
  {
    key: 'executionPath',
    env: 'BRAIN_EXECUTION_PATH',
    kind: 'path',
    description: 'sandbox work directory (reserved)',
  },
  { key: 'notesPath', env: 'BRAIN_NOTES_PATH', kind: 'path', description: 'notes directory (reserved)' },
  {
    key: 'maxMemoryMb',
    env: 'BRAIN_MAX_MEMORY_MB',
    kind: 'int',
    description: 'sandbox memory limit (reserved)',
  },
  {
    key: 'maxExecutionTimeMs',
    env: 'BRAIN_MAX_EXECUTION_TIME_MS',
    kind: 'int',
    description: 'sandbox time limit (reserved)',
  },
  {
    key: 'maxOutputSizeMb',
    env: 'BRAIN_MAX_OUTPUT_SIZE_MB',
    kind: 'int',
    description: 'sandbox output limit (reserved)',
  },
  {
    key: 'workerMin',
    env: 'BRAIN_WORKER_MIN',
    kind: 'int',
    description: 'sandbox workers kept warm (reserved)',
  },
  {
    key: 'workerMax',
    env: 'BRAIN_WORKER_MAX',
    kind: 'int',
    description: 'sandbox workers at most (reserved)',
  },
  {
    key: 'cacheSizeMb',
    env: 'BRAIN_CACHE_SIZE_MB',
    kind: 'int',
    description: 'SQLite page cache per connection',
  },
  {
    key: 'vacuumIntervalHours',
    env: 'BRAIN_VACUUM_INTERVAL_HOURS',
    kind: 'int',
    description: 'incremental vacuum period (reserved)',
  },
  {
    key: 'metricsPort',
    env: 'BRAIN_METRICS_PORT',
    kind: 'int',
    description: 'Prometheus metrics port (reserved)',
  },
  {
    key: 'healthCheckIntervalMs',
    env: 'BRAIN_HEALTH_CHECK_INTERVAL_MS',
    kind: 'int',
    description: 'self health check period (reserved)',
  },
  { key: 'logLevel', env: 'LOG_LEVEL', kind: 'enum', description: 'log level' },
  { key: 'nodeEnv', env: 'NODE_ENV', kind: 'enum', description: 'environment name' },
  { key: 'host', env: 'BRAIN_HOST', kind: 'string', description: 'HTTP bind address' },
  { key: 'port', env: 'BRAIN_PORT', kind: 'int', description: 'HTTP port' },
  { key: 'allowedHosts', env: 'BRAIN_ALLOWED_HOSTS', kind: 'list', description: 'extra Host names accepted' },
  {
    key: 'allowedOrigins',
    env: 'BRAIN_ALLOWED_ORIGINS',
    kind: 'list',
    description: 'extra Origins accepted',
  },
  {
    key: 'migrateOnStart',
    env: 'BRAIN_MIGRATE_ON_START',
    kind: 'bool',
    description: 'apply migrations at start',
  },
  { key: 'busyTimeoutMs', env: 'BRAIN_BUSY_TIMEOUT_MS', kind: 'int', description: 'wait for another writer' },
  { key: 'embedder', env: 'BRAIN_EMBEDDER', kind: 'enum', description: 'embedding model' },
  {
    key: 'defaultTenant',
    env: 'BRAIN_DEFAULT_TENANT',
    kind: 'string',
    description: 'tenant used without auth',
  },
];
