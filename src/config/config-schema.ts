import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Cron } from 'croner';
import { z } from 'zod';

/** Log levels pino knows, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** The usual names of `NODE_ENV`; any other value runs as not production, with a warning. */
export const NODE_ENVS = ['development', 'production', 'test'] as const;
/** BRAIN_EMBEDDER's values: the providers of modules/embeddings (app/ checks the two lists agree), and none. */
export const EMBEDDERS = ['hash', 'use-lite', 'use-lite-static', 'transformers', 'openai', 'none'] as const;

/** How a setting is written as text (environment, `.env`); a config file uses the JSON type instead. */
export type SettingKind = 'path' | 'int' | 'number' | 'bool' | 'list' | 'enum' | 'string';

const intBetween = (min: number, max: number) => {
  const limit = `expected an integer between ${min} and ${max}`;
  return z
    .number({ error: limit })
    .int({ error: limit })
    .min(min, { error: limit })
    .max(max, { error: limit });
};

const numberBetween = (min: number, max: number) => {
  const limit = `expected a number from ${min} to ${max}`;
  return z.number({ error: limit }).min(min, { error: limit }).max(max, { error: limit });
};

const pathText = z.string({ error: 'expected a path' }).trim().min(1, { error: 'expected a non-empty path' });

const nameList = z.array(
  z
    .string({ error: 'expected a list of names' })
    .trim()
    .min(1, { error: 'expected non-empty names' })
    .max(255, { error: 'each name must be at most 255 characters' }),
  { error: 'expected a list of strings (a JSON array in the file, comma-separated in the environment)' },
);

const optionalText = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .trim()
    .min(1, { error: `expected ${what}, not an empty string` })
    .max(4096, { error: `expected ${what} of at most 4096 characters` })
    .optional();

/**
 * TLS to PostgreSQL: `prefer-url` leaves it to the URL's `sslmode` (libpq's names), `disable` never
 * uses it, `require` encrypts without checking the certificate, `verify-full` checks it against the
 * system's CAs or BRAIN_DATABASE_SSL_CA_FILE.
 */
/**
 * MCP over HTTP: `sessions` keeps a session per client in the process (mcp-sessions.ts), `stateless`
 * answers every request on its own so any replica behind a load balancer can (mcp-stateless.ts), and
 * `auto` is stateless on PostgreSQL (where replicas are the point) and sessions on SQLite.
 */
export const MCP_MODES = ['auto', 'sessions', 'stateless'] as const;
/** How runs are contained: bubblewrap namespaces (default), or only rlimits and the timeout (never in production). */
export const SANDBOX_MODES = ['bwrap', 'none'] as const;

export const DATABASE_SSL_MODES = ['prefer-url', 'disable', 'require', 'verify-full'] as const;

const urlWithScheme = (what: string, schemes: string[]) =>
  optionalText(what).refine(
    (v) => {
      if (v === undefined) return true;
      try {
        return schemes.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { error: `expected ${what}` },
  );
const postgresUrl = (what: string) => urlWithScheme(what, ['postgres:', 'postgresql:']);
const redisUrlText = (what: string) => urlWithScheme(what, ['redis:', 'rediss:']);
const httpUrl = (what: string) => urlWithScheme(what, ['http:', 'https:']);

/** A secret given as text: at least `min` characters, so that a placeholder or a typo is caught. */
const secretText = (what: string, min: number) =>
  z
    .string({ error: `expected ${what}` })
    .trim()
    .min(min, { error: `expected ${what} of at least ${min} characters` })
    .max(4096, { error: `expected ${what} of at most 4096 characters` })
    .optional();

/** An IPv4 or IPv6 address, or a CIDR block of either (`10.0.0.0/8`, `::1`, `fd00::/8`). */
const addressOrCidr = z
  .string({ error: 'expected IP addresses or CIDR blocks' })
  .trim()
  .refine(
    (v) => {
      const [address, bits, extra] = v.split('/');
      if (extra !== undefined || !address) return false;
      const family = isIP(address);
      if (family === 0) return false;
      if (bits === undefined) return true;
      const n = Number(bits);
      return /^\d{1,3}$/.test(bits) && n >= 0 && n <= (family === 4 ? 32 : 128);
    },
    { error: 'expected IP addresses or CIDR blocks such as 10.0.0.0/8 or ::1' },
  );

const booleanSetting = z.boolean({
  error: 'expected true or false (in the environment also 1/0, yes/no, on/off)',
});

/** A cron expression (5 or 6 fields, croner's syntax: `0 * * * *`, `@daily`), or `off` for a job not run. */
const cronText = z
  .string({ error: 'expected a cron expression such as "0 * * * *", or off' })
  .trim()
  .superRefine((v, ctx) => {
    if (v === 'off') return;
    let cron: Cron;
    try {
      cron = new Cron(v, { paused: true });
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'expected a cron expression such as "0 * * * *" (minute hour day month weekday), or off',
      });
      return;
    }
    // A valid pattern that no date matches (`0 0 31 2 *`) would leave its job never run, silently.
    const next = cron.nextRun();
    cron.stop();
    if (next === null)
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" matches no date, so its job would never run: give a date that exists, or off`,
      });
  });

const HALF_LIFE_ENTRY = /^([a-z][a-z0-9_]{0,31})=(\d+(?:\.\d+)?)$/;

/**
 * Half-lives by memory type, `type=days` separated by commas (`event=14,fact=90`): days from 0.01 to
 * 36,500. An empty string: every type has BRAIN_DECAY_HALF_LIFE_DAYS.
 */
export function parseHalfLives(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = HALF_LIFE_ENTRY.exec(part);
    const days = m ? Number(m[2]) : Number.NaN;
    if (!m || !(days >= 0.01 && days <= 36_500))
      throw new Error(`"${part}" is not type=days with days from 0.01 to 36500`);
    const type = m[1] as string;
    if (type in out) throw new Error(`${type} is given twice`);
    out[type] = days;
  }
  return out;
}

const halfLivesText = z
  .string({ error: 'expected type=days pairs such as event=14,fact=90' })
  .superRefine((v, ctx) => {
    try {
      parseHalfLives(v);
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: `expected type=days pairs such as event=14,fact=90: ${(error as Error).message}`,
      });
    }
  });

/** An IANA time zone name that this Node knows (`UTC`, `Europe/Paris`). */
const timezoneText = z
  .string({ error: 'expected a time zone name such as UTC or Europe/Paris' })
  .trim()
  .refine(
    (v) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: v });
        return true;
      } catch {
        return false;
      }
    },
    { error: 'expected a time zone name such as UTC or Europe/Paris' },
  );

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of ${values.join(', ')}` });

/**
 * Other tools' spellings of a log level, so that a `LOG_LEVEL` set for another program in the same
 * environment (Claude Code starts `brain mcp` in the user's project) does not stop Brain.
 */
export const LOG_LEVEL_ALIASES: Readonly<Record<string, (typeof LOG_LEVELS)[number]>> = {
  warning: 'warn',
  err: 'error',
  crit: 'fatal',
  critical: 'fatal',
  verbose: 'debug',
  off: 'silent',
  none: 'silent',
};

/** A log level as pino names it: any case, surrounding spaces and {@link LOG_LEVEL_ALIASES} accepted. */
export function normalizeLogLevel(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const lower = value.trim().toLowerCase();
  return LOG_LEVEL_ALIASES[lower] ?? lower;
}

/**
 * Why a valid value deserves a warning, or undefined. Trigger: a `NODE_ENV` other than development,
 * production or test (`staging`). Reason: it is another program's name for its environment, not a
 * mistake in Brain's settings. Outcome: Brain starts, treating it as not production.
 */
export function settingWarning(key: string, value: unknown): string | undefined {
  if (key === 'nodeEnv' && !(NODE_ENVS as readonly unknown[]).includes(value)) {
    return `NODE_ENV: ${JSON.stringify(value)} is not one of ${NODE_ENVS.join(', ')}; Brain treats it as not production`;
  }
  return undefined;
}

/**
 * One setting, defined once: its environment variable, how to read it from text, its schema (limits and
 * default) and, for a setting validated today but used by a later feature, which feature that is.
 */
const setting = <S extends z.ZodType>(env: string, kind: SettingKind, schema: S, reserved?: string) => ({
  env,
  kind,
  schema,
  reserved,
  httpOnly: false,
});

/** A setting only `brain serve` reads (its listener, guard, timeouts, MCP sessions): see SettingSpec. */
const httpSetting = <S extends z.ZodType>(env: string, kind: SettingKind, schema: S) => ({
  ...setting(env, kind, schema),
  httpOnly: true,
});

/** Every setting, keyed by its config-file key, in the order reports and docs list them. */
const DEFINITIONS = {
  home: setting('BRAIN_HOME', 'path', pathText.optional()),
  dbPath: setting('BRAIN_DB_PATH', 'path', pathText.optional()),
  backupPath: setting('BRAIN_BACKUP_PATH', 'path', pathText.optional()),
  logPath: setting('BRAIN_LOG_PATH', 'path', pathText.optional()),
  executionPath: setting('BRAIN_EXECUTION_PATH', 'path', pathText.optional()),
  notesPath: setting('BRAIN_NOTES_PATH', 'path', pathText.optional(), 'notes'),
  modelsPath: setting('BRAIN_MODELS_PATH', 'path', pathText.optional()),
  maxMemoryMb: setting('BRAIN_MAX_MEMORY_MB', 'int', intBetween(64, 65536).default(512)),
  maxExecutionTimeMs: setting(
    'BRAIN_MAX_EXECUTION_TIME_MS',
    'int',
    intBetween(100, 3_600_000).default(300_000),
  ),
  maxOutputSizeMb: setting('BRAIN_MAX_OUTPUT_SIZE_MB', 'int', intBetween(1, 1024).default(10)),
  workerMin: setting('BRAIN_WORKER_MIN', 'int', intBetween(0, 64).default(1)),
  workerMax: setting('BRAIN_WORKER_MAX', 'int', intBetween(0, 64).default(4)),
  sandbox: setting('BRAIN_SANDBOX', 'enum', oneOf(SANDBOX_MODES).default('bwrap')),
  executionLeaseMs: setting('BRAIN_EXECUTION_LEASE_MS', 'int', intBetween(1000, 600_000).default(15_000)),
  executionRetentionDays: setting('BRAIN_EXECUTION_RETENTION_DAYS', 'int', intBetween(0, 36_500).default(30)),
  databaseUrl: {
    ...setting(
      'BRAIN_DATABASE_URL',
      'string',
      postgresUrl('a postgres:// URL (unset: the embedded SQLite file)'),
    ),
    secret: true,
  },
  databaseReadUrl: {
    ...setting('BRAIN_DATABASE_READ_URL', 'string', postgresUrl('a postgres:// URL of a read replica')),
    secret: true,
  },
  databasePoolSize: setting('BRAIN_DATABASE_POOL_SIZE', 'int', intBetween(1, 1000).default(10)),
  databaseStatementTimeoutMs: setting(
    'BRAIN_DATABASE_STATEMENT_TIMEOUT_MS',
    'int',
    intBetween(0, 3_600_000).default(30_000),
  ),
  databaseConnectTimeoutMs: setting(
    'BRAIN_DATABASE_CONNECT_TIMEOUT_MS',
    'int',
    intBetween(100, 600_000).default(5000),
  ),
  databasePreparedStatements: setting(
    'BRAIN_DATABASE_PREPARED_STATEMENTS',
    'bool',
    booleanSetting.default(true),
  ),
  databaseSsl: setting('BRAIN_DATABASE_SSL', 'enum', oneOf(DATABASE_SSL_MODES).default('prefer-url')),
  databaseSslCaFile: setting('BRAIN_DATABASE_SSL_CA_FILE', 'string', optionalText('a path to a PEM file')),
  redisUrl: {
    ...setting('BRAIN_REDIS_URL', 'string', redisUrlText('a redis:// or rediss:// URL')),
    secret: true,
  },
  sqliteCacheMb: setting('BRAIN_SQLITE_CACHE_MB', 'int', intBetween(1, 4096).default(64)),
  cacheSizeMb: setting('BRAIN_CACHE_SIZE_MB', 'int', intBetween(0, 4096).default(32)),
  vacuumIntervalHours: setting('BRAIN_VACUUM_INTERVAL_HOURS', 'int', intBetween(0, 8760).default(24)),
  scheduler: setting('BRAIN_SCHEDULER', 'bool', booleanSetting.default(true)),
  cronTimezone: setting('BRAIN_CRON_TIMEZONE', 'string', timezoneText.default('UTC')),
  backupCron: setting('BRAIN_BACKUP_CRON', 'string', cronText.default('0 * * * *')),
  vacuumCron: setting('BRAIN_VACUUM_CRON', 'string', cronText.default('0 3 * * *')),
  checkpointCron: setting('BRAIN_CHECKPOINT_CRON', 'string', cronText.default('*/30 * * * *')),
  expireCron: setting('BRAIN_EXPIRE_CRON', 'string', cronText.default('17 * * * *')),
  rebalanceCron: setting('BRAIN_REBALANCE_CRON', 'string', cronText.default('*/15 * * * *')),
  decayCron: setting('BRAIN_DECAY_CRON', 'string', cronText.default('7 */6 * * *')),
  ttlCron: setting('BRAIN_TTL_CRON', 'string', cronText.default('*/10 * * * *')),
  sessionCleanupCron: setting('BRAIN_SESSION_CLEANUP_CRON', 'string', cronText.default('23 * * * *')),
  sessionIdleHours: setting('BRAIN_SESSION_IDLE_HOURS', 'int', intBetween(1, 87_600).default(24)),
  hotMax: setting('BRAIN_HOT_MAX', 'int', intBetween(1, 10_000_000).default(2000)),
  coldAfterDays: setting('BRAIN_COLD_AFTER_DAYS', 'int', intBetween(1, 36_500).default(90)),
  promoteAfterAccesses: setting('BRAIN_PROMOTE_AFTER_ACCESSES', 'int', intBetween(1, 1_000_000).default(3)),
  decayHalfLifeDays: setting('BRAIN_DECAY_HALF_LIFE_DAYS', 'number', numberBetween(0.01, 36_500).default(30)),
  decayHalfLives: setting(
    'BRAIN_DECAY_HALF_LIVES',
    'string',
    halfLivesText.default(
      'event=14,note=30,fact=90,decision=180,instruction=180,preference=180,user_preferences=365,system_critical=365',
    ),
  ),
  episodeBufferSize: setting('BRAIN_EPISODE_BUFFER_SIZE', 'int', intBetween(1, 10_000).default(50)),
  episodeHalfLifeMinutes: setting(
    'BRAIN_EPISODE_HALF_LIFE_MINUTES',
    'number',
    numberBetween(0.01, 525_600).default(60),
  ),
  episodeConsolidateImportance: setting(
    'BRAIN_EPISODE_CONSOLIDATE_IMPORTANCE',
    'number',
    numberBetween(0, 1).default(0.7),
  ),
  jobRetries: setting('BRAIN_JOB_RETRIES', 'int', intBetween(0, 100).default(3)),
  jobRetryDelayMs: setting('BRAIN_JOB_RETRY_DELAY_MS', 'int', intBetween(10, 86_400_000).default(30_000)),
  backupKeepHourlyDays: setting('BRAIN_BACKUP_KEEP_HOURLY_DAYS', 'int', intBetween(0, 3650).default(7)),
  backupKeepDailyDays: setting('BRAIN_BACKUP_KEEP_DAILY_DAYS', 'int', intBetween(0, 3650).default(30)),
  backupKeepWeeklyDays: setting('BRAIN_BACKUP_KEEP_WEEKLY_DAYS', 'int', intBetween(0, 36500).default(365)),
  backupHook: setting('BRAIN_BACKUP_HOOK', 'string', optionalText('a shell command')),
  backupHookTimeoutMs: setting(
    'BRAIN_BACKUP_HOOK_TIMEOUT_MS',
    'int',
    intBetween(100, 86_400_000).default(300_000),
  ),
  backupMaxAgeHours: setting('BRAIN_BACKUP_MAX_AGE_HOURS', 'int', intBetween(1, 87_600).default(25)),
  pgDumpPath: setting('BRAIN_PG_DUMP_PATH', 'string', optionalText('a path to pg_dump')),
  pgRestorePath: setting('BRAIN_PG_RESTORE_PATH', 'string', optionalText('a path to pg_restore')),
  metricsPort: httpSetting('BRAIN_METRICS_PORT', 'int', intBetween(0, 65535).optional()),
  slowQueryMs: setting('BRAIN_SLOW_QUERY_MS', 'int', intBetween(0, 3_600_000).default(50)),
  healthCheckIntervalMs: setting(
    'BRAIN_HEALTH_CHECK_INTERVAL_MS',
    'int',
    intBetween(1000, 3_600_000).default(30_000),
    'the health check',
  ),
  logLevel: setting('LOG_LEVEL', 'enum', z.preprocess(normalizeLogLevel, oneOf(LOG_LEVELS)).default('info')),
  nodeEnv: setting(
    'NODE_ENV',
    'string',
    z
      .string({ error: 'expected an environment name such as production' })
      .trim()
      .min(1, { error: 'expected an environment name such as production' })
      .default('development'),
  ),
  host: httpSetting(
    'BRAIN_HOST',
    'string',
    z
      .string({ error: 'expected a host name or address' })
      .trim()
      .min(1, { error: 'expected a host name or address of 1 to 255 characters' })
      .max(255, { error: 'expected a host name or address of 1 to 255 characters' })
      .default('127.0.0.1'),
  ),
  port: httpSetting('BRAIN_PORT', 'int', intBetween(0, 65535).default(7777)),
  workers: httpSetting('BRAIN_WORKERS', 'int', intBetween(1, 64).default(1)),
  allowedHosts: httpSetting('BRAIN_ALLOWED_HOSTS', 'list', nameList.default([])),
  allowedOrigins: httpSetting('BRAIN_ALLOWED_ORIGINS', 'list', nameList.default([])),
  requestTimeoutMs: httpSetting(
    'BRAIN_REQUEST_TIMEOUT_MS',
    'int',
    intBetween(100, 3_600_000).default(30_000),
  ),
  headersTimeoutMs: httpSetting('BRAIN_HEADERS_TIMEOUT_MS', 'int', intBetween(100, 600_000).default(10_000)),
  mcpMaxSessions: httpSetting('BRAIN_MCP_MAX_SESSIONS', 'int', intBetween(1, 100_000).default(1000)),
  mcpMaxSessionsPerClient: httpSetting(
    'BRAIN_MCP_MAX_SESSIONS_PER_CLIENT',
    'int',
    intBetween(1, 100_000).default(100),
  ),
  mcpSessionIdleMs: httpSetting(
    'BRAIN_MCP_SESSION_IDLE_MS',
    'int',
    intBetween(1000, 86_400_000).default(30 * 60_000),
  ),
  mcpMode: httpSetting('BRAIN_MCP_MODE', 'enum', oneOf(MCP_MODES).default('auto')),
  idempotencyTtlHours: httpSetting('BRAIN_IDEMPOTENCY_TTL_HOURS', 'int', intBetween(1, 720).default(24)),
  apiToken: httpSetting('BRAIN_API_TOKEN', 'string', secretText('a token', 16)),
  jwtSecret: httpSetting('BRAIN_JWT_SECRET', 'string', secretText('an HS256 secret', 32)),
  jwtJwksUrl: httpSetting('BRAIN_JWT_JWKS_URL', 'string', httpUrl('an http(s) URL of a JWKS')),
  jwtIssuer: httpSetting('BRAIN_JWT_ISSUER', 'string', optionalText('an issuer (the iss claim)')),
  jwtAudience: httpSetting('BRAIN_JWT_AUDIENCE', 'string', optionalText('an audience (the aud claim)')),
  jwtTenantClaim: httpSetting(
    'BRAIN_JWT_TENANT_CLAIM',
    'string',
    z
      .string({ error: 'expected a claim name' })
      .regex(/^[A-Za-z0-9_:./-]{1,128}$/, { error: 'expected a claim name of 1 to 128 characters' })
      .default('tenant'),
  ),
  oauthIssuer: httpSetting(
    'BRAIN_OAUTH_ISSUER',
    'string',
    httpUrl('an http(s) URL of an authorization server'),
  ),
  oauthJwksUrl: httpSetting('BRAIN_OAUTH_JWKS_URL', 'string', httpUrl('an http(s) URL of a JWKS')),
  publicUrl: httpSetting(
    'BRAIN_PUBLIC_URL',
    'string',
    httpUrl("an http(s) URL (Brain's own, as clients reach it)"),
  ),
  opaEndpoint: httpSetting('BRAIN_OPA_ENDPOINT', 'string', httpUrl('an http(s) URL of an OPA decision')),
  opaFailClosed: httpSetting(
    'BRAIN_OPA_FAIL_CLOSED',
    'bool',
    z.boolean({ error: 'expected true or false (in the environment also 1/0, yes/no, on/off)' }).optional(),
  ),
  opaTimeoutMs: httpSetting('BRAIN_OPA_TIMEOUT_MS', 'int', intBetween(10, 60_000).default(1000)),
  rateRps: httpSetting('BRAIN_RATE_RPS', 'int', intBetween(0, 1_000_000).default(100)),
  rateBurst: httpSetting('BRAIN_RATE_BURST', 'int', intBetween(0, 1_000_000).default(200)),
  writeDailyLimit: httpSetting(
    'BRAIN_WRITE_DAILY_LIMIT',
    'int',
    intBetween(0, 1_000_000_000).default(1_000_000),
  ),
  adminAllow: httpSetting(
    'BRAIN_ADMIN_ALLOW',
    'list',
    z.array(addressOrCidr, { error: 'expected a list of IP addresses or CIDR blocks' }).default([]),
  ),
  migrateOnStart: setting(
    'BRAIN_MIGRATE_ON_START',
    'bool',
    z
      .boolean({ error: 'expected true or false (in the environment also 1/0, yes/no, on/off)' })
      .default(true),
  ),
  busyTimeoutMs: setting('BRAIN_BUSY_TIMEOUT_MS', 'int', intBetween(0, 600_000).default(5000)),
  embedder: setting('BRAIN_EMBEDDER', 'enum', oneOf(EMBEDDERS).default('use-lite-static')),
  embeddingModel: setting('BRAIN_EMBEDDING_MODEL', 'string', optionalText('a model name or directory')),
  embeddingUrl: setting('BRAIN_EMBEDDING_URL', 'string', optionalText('an http(s) URL ending in /v1')),
  embeddingApiKey: setting('BRAIN_EMBEDDING_API_KEY', 'string', optionalText('an API key')),
  embeddingDimensions: setting('BRAIN_EMBEDDING_DIMENSIONS', 'int', intBetween(8, 8192).optional()),
  embeddingTimeoutMs: setting('BRAIN_EMBEDDING_TIMEOUT_MS', 'int', intBetween(100, 600_000).default(10_000)),
  embeddingBatchSize: setting('BRAIN_EMBEDDING_BATCH_SIZE', 'int', intBetween(1, 2048).default(64)),
  recallVectorWeight: setting('BRAIN_RECALL_VECTOR_WEIGHT', 'number', numberBetween(0, 10).optional()),
  recallVectorFloor: setting('BRAIN_RECALL_VECTOR_FLOOR', 'number', numberBetween(-1, 1).optional()),
  recallVectorEvidence: setting('BRAIN_RECALL_VECTOR_EVIDENCE', 'number', numberBetween(-1, 1).optional()),
  dedupeThreshold: setting('BRAIN_DEDUPE_THRESHOLD', 'number', numberBetween(0, 1).optional()),
  dedupeReworded: setting('BRAIN_DEDUPE_REWORDED', 'bool', booleanSetting.default(true)),
  circuitBreakerMaxFailures: setting('CIRCUIT_BREAKER_MAX_FAILURES', 'int', intBetween(1, 1000).default(5)),
  circuitBreakerResetTimeout: setting(
    'CIRCUIT_BREAKER_RESET_TIMEOUT',
    'int',
    intBetween(100, 3_600_000).default(30_000),
  ),
  allowRemoteModels: setting(
    'BRAIN_ALLOW_REMOTE_MODELS',
    'bool',
    z
      .boolean({ error: 'expected true or false (in the environment also 1/0, yes/no, on/off)' })
      .default(true),
  ),
  quotaMemories: setting('BRAIN_QUOTA_MEMORIES', 'int', intBetween(0, 1_000_000_000).default(0)),
  quotaBytes: setting('BRAIN_QUOTA_BYTES', 'int', intBetween(0, Number.MAX_SAFE_INTEGER).default(0)),
  auditContent: setting(
    'BRAIN_AUDIT_CONTENT',
    'bool',
    z
      .boolean({ error: 'expected true or false (in the environment also 1/0, yes/no, on/off)' })
      .default(false),
  ),
  auditStreamMaxLen: setting('BRAIN_AUDIT_STREAM_MAXLEN', 'int', intBetween(1, 100_000_000).default(100_000)),
  defaultTenant: setting(
    'BRAIN_DEFAULT_TENANT',
    'string',
    z
      .string({ error: 'expected a tenant id' })
      .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'expected 1 to 64 characters of A-Z, a-z, 0-9, _ or -' })
      .default('default'),
  ),
};

type Definitions = typeof DEFINITIONS;
export type SettingKey = keyof Definitions;

/** One setting as reports, docs tests and the loader see it. */
export interface SettingSpec {
  key: SettingKey;
  env: string;
  kind: SettingKind;
  /** The later feature that will use this setting; validated now, unused today. */
  reserved?: string;
  /** Marks a secret explicitly; a setting named like one is masked anyway (see {@link isSecretSetting}). */
  secret?: boolean;
  /**
   * Read only by `brain serve`: a bad value stops the HTTP server but only warns `brain mcp` and the data
   * commands, which never read it.
   */
  httpOnly?: boolean;
}

export const SETTINGS: readonly SettingSpec[] = (Object.keys(DEFINITIONS) as SettingKey[]).map((key) => {
  const { env, kind, reserved, httpOnly } = DEFINITIONS[key];
  return { key, env, kind, ...(reserved ? { reserved } : {}), ...(httpOnly ? { httpOnly } : {}) };
});

const shape = Object.fromEntries(SETTINGS.map((s) => [s.key, DEFINITIONS[s.key].schema])) as {
  [K in SettingKey]: Definitions[K]['schema'];
};

/**
 * Every setting as a user gives it (config-file keys; environment text already converted to its type).
 * Unknown keys are errors so that a typo is never silently ignored. Paths stay optional here.
 */
export const brainSettingsSchema = z.strictObject(shape).superRefine((s, ctx) => {
  if (s.workerMin > s.workerMax) {
    ctx.addIssue({
      code: 'custom',
      path: ['workerMin'],
      message: `must be at most workerMax (BRAIN_WORKER_MAX), which is ${s.workerMax}; got ${s.workerMin}`,
    });
  }
});

export type BrainSettings = z.output<typeof brainSettingsSchema>;

const PATH_KEYS = ['dbPath', 'backupPath', 'executionPath', 'notesPath', 'modelsPath'] as const;
export type PathKey = (typeof PATH_KEYS)[number];

/** The effective configuration: every setting present, every path absolute. */
export interface BrainConfig extends Omit<BrainSettings, 'home' | PathKey | 'logPath'> {
  home: string;
  dbPath: string;
  backupPath: string;
  /** Where `combined.log` and `error.log` are written; none: logs go to stdout/stderr only. */
  logPath?: string | undefined;
  executionPath: string;
  notesPath: string;
  modelsPath: string;
}

/** Where each path goes under BRAIN_HOME when it is not given. */
export const DERIVED_PATHS: Record<PathKey, string> = {
  dbPath: path.join('data', 'brain.db'),
  backupPath: 'backups',
  executionPath: 'execution',
  notesPath: 'notes',
  modelsPath: 'models',
};

/** `~/.brain`, read when needed so that nothing depends on the home directory at import. */
export function defaultHome(): string {
  return path.join(os.homedir(), '.brain');
}

/** A path as given, made absolute: `~` and `~/` expand to the home directory, relative ones join `cwd`. */
export function absolutePath(value: string, cwd: string): string {
  const expanded = value === '~' || value.startsWith('~/') ? path.join(os.homedir(), value.slice(1)) : value;
  return path.resolve(cwd, expanded);
}

/** Settings → config: the home (default `~/.brain`) made absolute, and every path not given under it. */
export function resolvePaths(settings: BrainSettings, cwd: string): BrainConfig {
  const home = absolutePath(settings.home ?? defaultHome(), cwd);
  const config = { ...settings, home } as BrainConfig;
  for (const key of PATH_KEYS) {
    const given = settings[key];
    config[key] = given ? absolutePath(given, cwd) : path.join(home, DERIVED_PATHS[key]);
  }
  if (settings.logPath) config.logPath = absolutePath(settings.logPath, cwd);
  return config;
}

/**
 * The one schema of Brain's configuration: settings in, {@link BrainConfig} out, with relative paths
 * resolved against the process's working directory. `loadConfig` validates setting by setting against
 * the same definitions so that it can report every problem and name where each value came from.
 */
export const brainConfigSchema = brainSettingsSchema.transform((s) => resolvePaths(s, process.cwd()));

/** The zod schema of one setting, for validating a value from one source. */
export function settingSchema(key: SettingKey): z.ZodType {
  return DEFINITIONS[key].schema;
}

const SECRET_NAME = /secret|token|password|passwd|key|credential/i;

/** What masking needs to know of a setting; plain strings, so a setting added later is covered as well. */
export interface SettingName {
  key: string;
  env: string;
  secret?: boolean;
}

/** Whether a setting's value must never be shown: marked secret, or named like one (a future BRAIN_API_KEY). */
export function isSecretSetting(spec: SettingName): boolean {
  return spec.secret === true || SECRET_NAME.test(spec.key) || SECRET_NAME.test(spec.env);
}

export const MASK = '****';

/** Hides the password of every URL with credentials: postgres://user:pass@host → postgres://user:****@host. */
export function maskUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^\s/?#]+)@/gi, `$1${MASK}@`);
}
