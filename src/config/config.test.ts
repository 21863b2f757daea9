import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrainError } from '../core/errors.js';
import { checkPaths } from './check-paths.js';
import { configReportJson, displayValue, formatConfigReport } from './config-report.js';
import { brainConfigSchema, SETTINGS } from './config-schema.js';
import {
  type LoadedConfig,
  loadConfig,
  requireValidConfig,
  settingsUsedBy,
  startupWarnings,
} from './load-config.js';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-config-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Loads with `dir` as working directory and, unless given, as BRAIN_HOME (never the real ~/.brain). */
const load = (env: Record<string, string>, configPath?: string) =>
  loadConfig({ env: { BRAIN_HOME: dir, ...env }, cwd: dir, configPath });
const messages = (loaded: Pick<LoadedConfig, 'problems'>) => loaded.problems.map((p) => p.message);
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
};

describe('loadConfig', () => {
  it('uses the documented default of every setting and derives every path from BRAIN_HOME', () => {
    const home = path.join(dir, 'h');
    const { config, problems, warnings, sources, files } = load({ BRAIN_HOME: home });
    expect(problems).toEqual([]);
    expect(warnings).toEqual([]);
    expect(files).toEqual([]);
    expect(config).toEqual({
      home,
      dbPath: path.join(home, 'data', 'brain.db'),
      backupPath: path.join(home, 'backups'),
      executionPath: path.join(home, 'execution'),
      notesPath: path.join(home, 'notes'),
      modelsPath: path.join(home, 'models'),
      maxMemoryMb: 512,
      maxExecutionTimeMs: 300_000,
      maxOutputSizeMb: 10,
      workerMin: 1,
      workerMax: 4,
      sandbox: 'bwrap',
      executionLeaseMs: 15_000,
      executionRetentionDays: 30,
      databasePoolSize: 10,
      databaseStatementTimeoutMs: 30_000,
      databaseConnectTimeoutMs: 5000,
      databasePreparedStatements: true,
      databaseSsl: 'prefer-url',
      sqliteCacheMb: 64,
      cacheSizeMb: 32,
      dedupeReworded: true,
      vacuumIntervalHours: 24,
      scheduler: true,
      cronTimezone: 'UTC',
      backupCron: '0 * * * *',
      vacuumCron: '0 3 * * *',
      checkpointCron: '*/30 * * * *',
      expireCron: '17 * * * *',
      rebalanceCron: '*/15 * * * *',
      decayCron: '7 */6 * * *',
      ttlCron: '*/10 * * * *',
      sessionCleanupCron: '23 * * * *',
      sessionIdleHours: 24,
      hotMax: 2000,
      coldAfterDays: 90,
      promoteAfterAccesses: 3,
      decayHalfLifeDays: 30,
      decayHalfLives:
        'event=14,note=30,fact=90,decision=180,instruction=180,preference=180,user_preferences=365,system_critical=365',
      episodeBufferSize: 50,
      episodeHalfLifeMinutes: 60,
      episodeConsolidateImportance: 0.7,
      jobRetries: 3,
      jobRetryDelayMs: 30_000,
      backupKeepHourlyDays: 7,
      backupKeepDailyDays: 30,
      backupKeepWeeklyDays: 365,
      backupHookTimeoutMs: 300_000,
      backupMaxAgeHours: 25,
      slowQueryMs: 50,
      healthCheckIntervalMs: 30_000,
      logLevel: 'info',
      nodeEnv: 'development',
      host: '127.0.0.1',
      port: 7777,
      workers: 1,
      allowedHosts: [],
      allowedOrigins: [],
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      mcpMaxSessions: 1000,
      mcpMaxSessionsPerClient: 100,
      mcpSessionIdleMs: 1_800_000,
      mcpMode: 'auto',
      idempotencyTtlHours: 24,
      jwtTenantClaim: 'tenant',
      opaTimeoutMs: 1000,
      rateRps: 100,
      rateBurst: 200,
      writeDailyLimit: 1_000_000,
      adminAllow: [],
      migrateOnStart: true,
      busyTimeoutMs: 5000,
      embedder: 'use-lite-static',
      embeddingTimeoutMs: 10_000,
      embeddingBatchSize: 64,
      circuitBreakerMaxFailures: 5,
      circuitBreakerResetTimeout: 30_000,
      allowRemoteModels: true,
      quotaMemories: 0,
      quotaBytes: 0,
      auditContent: false,
      auditStreamMaxLen: 100_000,
      defaultTenant: 'default',
    });
    expect(sources).toMatchObject({ home: 'env', dbPath: 'BRAIN_HOME (env)', port: 'default' });
  });

  it('resolves relative paths against the working directory; a given path beats the derived one', () => {
    const { config, sources } = load({ BRAIN_HOME: 'rel-home', BRAIN_DB_PATH: 'db/x.db' });
    expect(config.home).toBe(path.join(dir, 'rel-home'));
    expect(config.dbPath).toBe(path.join(dir, 'db', 'x.db'));
    expect(config.notesPath).toBe(path.join(dir, 'rel-home', 'notes'));
    expect(sources.dbPath).toBe('env');
  });

  it('layers default < config file < .env < environment for the same setting', () => {
    const file = write('brain.config.json', JSON.stringify({ port: 1001 }));
    write('.env', 'BRAIN_PORT=1002\n');
    const all = load({ BRAIN_PORT: '1003' });
    expect([all.config.port, all.sources.port]).toEqual([1003, 'env']); // env over .env

    const noEnv = load({});
    expect([noEnv.config.port, noEnv.sources.port]).toEqual([1002, '.env']); // .env over the file

    fs.rmSync(path.join(dir, '.env'));
    const fileOnly = load({});
    expect([fileOnly.config.port, fileOnly.sources.port]).toEqual([1001, file]); // file over default

    fs.rmSync(file);
    const none = load({});
    expect([none.config.port, none.sources.port]).toEqual([7777, 'default']);
    expect([all, noEnv, fileOnly, none].flatMap((l) => l.problems)).toEqual([]);
  });

  it('lets an empty variable fall through to the layers below', () => {
    write('.env', 'BRAIN_PORT=1002\n');
    expect(load({ BRAIN_PORT: '' }).config.port).toBe(1002);
  });

  it('reads the file named by --config, else BRAIN_CONFIG, instead of ./brain.config.json', () => {
    write('brain.config.json', JSON.stringify({ logLevel: 'warn' }));
    const custom = write('custom.json', JSON.stringify({ logLevel: 'debug' }));
    const other = write('other.json', JSON.stringify({ logLevel: 'trace' }));
    const byFlag = load({}, 'custom.json');
    expect(byFlag.config.logLevel).toBe('debug');
    expect(byFlag.files).toEqual([custom]);
    expect(load({ BRAIN_CONFIG: other }).config.logLevel).toBe('trace');
    expect(load({ BRAIN_CONFIG: other }, 'custom.json').config.logLevel).toBe('debug');
    expect(load({}).config.logLevel).toBe('warn');
  });

  it('reports a missing explicit config file but not a missing default one', () => {
    const missing = load({}, 'nope.json');
    expect(missing.problems).toEqual([
      {
        setting: 'config file',
        source: path.join(dir, 'nope.json'),
        message: `${path.join(dir, 'nope.json')}: file not found`,
      },
    ]);
    expect(messages(load({ BRAIN_CONFIG: 'gone.json' }))).toEqual([
      `${path.join(dir, 'gone.json')}: file not found`,
    ]);
    expect(load({}).problems).toEqual([]);
  });

  it('names the variable, the limit and the value given, and keeps the default', () => {
    write('brain.config.json', JSON.stringify({ port: 1001 }));
    const loaded = load({
      BRAIN_PORT: 'abc',
      BRAIN_SQLITE_CACHE_MB: '999999',
      BRAIN_WORKER_MAX: '2.5',
      LOG_LEVEL: 'loud',
      BRAIN_MIGRATE_ON_START: 'maybe',
      BRAIN_DEFAULT_TENANT: 'has space',
      BRAIN_BACKUP_CRON: 'every hour',
      BRAIN_CRON_TIMEZONE: 'Mars/Olympus',
    });
    expect(messages(loaded).sort()).toEqual(
      [
        'BRAIN_PORT: expected an integer between 0 and 65535, got "abc"',
        'BRAIN_SQLITE_CACHE_MB: expected an integer between 1 and 4096, got 999999',
        'BRAIN_WORKER_MAX: expected an integer between 0 and 64, got "2.5"',
        'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
        'BRAIN_MIGRATE_ON_START: expected true or false (in the environment also 1/0, yes/no, on/off), got "maybe"',
        'BRAIN_DEFAULT_TENANT: expected 1 to 64 characters of A-Z, a-z, 0-9, _ or -, got "has space"',
        'BRAIN_BACKUP_CRON: expected a cron expression such as "0 * * * *" (minute hour day month weekday), or off, got "every hour"',
        'BRAIN_CRON_TIMEZONE: expected a time zone name such as UTC or Europe/Paris, got "Mars/Olympus"',
      ].sort(),
    );
    expect(loaded.problems.every((p) => p.source === 'env')).toBe(true);
    expect(loaded.problems.map((p) => p.setting)).toContain('BRAIN_PORT');
    // A bad value keeps the default; it does not fall back to the file's 1001.
    expect(loaded.config).toMatchObject({
      port: 7777,
      sqliteCacheMb: 64,
      workerMax: 4,
      logLevel: 'info',
      migrateOnStart: true,
      defaultTenant: 'default',
    });
    expect(loaded.sources.port).toBe('default');
  });

  it('refuses bad tier and decay settings, naming each and its limit', () => {
    const loaded = load({
      BRAIN_HOT_MAX: '0',
      BRAIN_COLD_AFTER_DAYS: 'soon',
      BRAIN_PROMOTE_AFTER_ACCESSES: '-1',
      BRAIN_DECAY_HALF_LIFE_DAYS: '0',
      BRAIN_DECAY_HALF_LIVES: 'event=14,fact=forever',
      BRAIN_REBALANCE_CRON: 'often',
    });
    expect(messages(loaded).sort()).toEqual(
      [
        'BRAIN_HOT_MAX: expected an integer between 1 and 10000000, got 0',
        'BRAIN_COLD_AFTER_DAYS: expected an integer between 1 and 36500, got "soon"',
        'BRAIN_PROMOTE_AFTER_ACCESSES: expected an integer between 1 and 1000000, got -1',
        'BRAIN_DECAY_HALF_LIFE_DAYS: expected a number from 0.01 to 36500, got 0',
        'BRAIN_DECAY_HALF_LIVES: expected type=days pairs such as event=14,fact=90: "fact=forever" is not type=days with days from 0.01 to 36500, got "event=14,fact=forever"',
        'BRAIN_REBALANCE_CRON: expected a cron expression such as "0 * * * *" (minute hour day month weekday), or off, got "often"',
      ].sort(),
    );
    expect(loaded.config).toMatchObject({ hotMax: 2000, coldAfterDays: 90, decayHalfLifeDays: 30 });
  });

  it('refuses a cron expression that matches no date, and a half-life type given twice', () => {
    const loaded = load({
      BRAIN_TTL_CRON: '0 0 31 2 *',
      BRAIN_DECAY_HALF_LIVES: 'fact=3,event=14,fact=5',
    });
    expect(messages(loaded).sort()).toEqual(
      [
        'BRAIN_TTL_CRON: "0 0 31 2 *" matches no date, so its job would never run: give a date that exists, or off, got "0 0 31 2 *"',
        'BRAIN_DECAY_HALF_LIVES: expected type=days pairs such as event=14,fact=90: fact is given twice, got "fact=3,event=14,fact=5"',
      ].sort(),
    );
    expect(loaded.config).toMatchObject({ ttlCron: '*/10 * * * *' });
    // The last day of February exists in some years; every-minute patterns and off stay valid.
    expect(messages(load({ BRAIN_TTL_CRON: '0 0 29 2 *', BRAIN_REBALANCE_CRON: 'off' }))).toEqual([]);
  });

  it('refuses a recall cache size outside 0-4096 MB, naming the setting and its limit', () => {
    for (const value of ['-1', '4097', '1.5', 'big']) {
      const loaded = load({ BRAIN_CACHE_SIZE_MB: value });
      const shown = /^-?\d+$/.test(value) ? value : JSON.stringify(value);
      expect(messages(loaded)).toEqual([
        `BRAIN_CACHE_SIZE_MB: expected an integer between 0 and 4096, got ${shown}`,
      ]);
      expect(loaded.config.cacheSizeMb).toBe(32);
    }
    // 0 is allowed: it turns the cache off. The name it had before is no setting, and says which is.
    expect(load({ BRAIN_CACHE_SIZE_MB: '0' }).config.cacheSizeMb).toBe(0);
    const renamed = load({ BRAIN_RECALL_CACHE_MB: '8' });
    expect(renamed.config.cacheSizeMb).toBe(8);
    expect(renamed.warnings.map((w) => w.message)).toEqual([
      'BRAIN_RECALL_CACHE_MB: renamed BRAIN_CACHE_SIZE_MB; read as BRAIN_CACHE_SIZE_MB: rename it',
    ]);
    const both = load({ BRAIN_RECALL_CACHE_MB: '8', BRAIN_CACHE_SIZE_MB: '16' });
    expect(both.config.cacheSizeMb).toBe(16);
    expect(both.warnings.map((w) => w.message)).toEqual([
      'BRAIN_RECALL_CACHE_MB: renamed BRAIN_CACHE_SIZE_MB; ignored, as that is set: rename it',
    ]);
    // A bad value under the old name is a problem named by the name given.
    expect(messages(load({ BRAIN_RECALL_CACHE_MB: '-1' }))).toEqual([
      'BRAIN_RECALL_CACHE_MB: expected an integer between 0 and 4096, got -1',
    ]);
  });

  it('names the config-file key and the file for a bad value there', () => {
    const file = write('brain.config.json', JSON.stringify({ port: '8080', vacuumIntervalHours: -1 }));
    const loaded = load({});
    expect(loaded.problems).toEqual([
      {
        setting: 'vacuumIntervalHours',
        source: file,
        message: expect.any(String),
        key: 'vacuumIntervalHours',
      },
      {
        setting: 'port',
        source: file,
        message: 'port: expected an integer between 0 and 65535, got "8080"',
        key: 'port',
      },
    ]);
    expect(loaded.problems[0]?.message).toBe(
      'vacuumIntervalHours: expected an integer between 0 and 8760, got -1',
    );
  });

  it('reports unknown config-file keys, suggesting the one meant', () => {
    const file = write('brain.config.json', JSON.stringify({ prot: 8080, BRAIN_HOST: 'x', zzzzzz: 1 }));
    const loaded = load({});
    expect(loaded.problems.map((p) => [p.setting, p.source])).toEqual([
      ['prot', file],
      ['BRAIN_HOST', file],
      ['zzzzzz', file],
    ]);
    expect(messages(loaded)).toEqual([
      'prot: unknown setting; did you mean port?',
      'BRAIN_HOST: unknown setting; a config file uses the key host',
      expect.stringMatching(/^zzzzzz: unknown setting \(known: home, dbPath, .*defaultTenant\)$/),
    ]);
  });

  it('reports invalid JSON and a non-object file, naming the file', () => {
    const file = write('brain.config.json', '{ "port": 80,');
    const bad = load({});
    expect(bad.problems).toHaveLength(1);
    expect(bad.problems[0]?.source).toBe(file);
    expect(bad.problems[0]?.message).toMatch(new RegExp(`^${file}: invalid JSON: \\S+`));
    expect(bad.config.port).toBe(7777);
    write('brain.config.json', '[1, 2]');
    expect(messages(load({}))).toEqual([`${file}: expected a JSON object of settings, e.g. {"port": 8080}`]);
  });

  it('reports workerMin above workerMax, named as the user wrote it', () => {
    const fromEnv = load({ BRAIN_WORKER_MIN: '8', BRAIN_WORKER_MAX: '2' });
    expect(fromEnv.problems).toEqual([
      {
        setting: 'BRAIN_WORKER_MIN',
        source: 'env',
        message: 'BRAIN_WORKER_MIN: must be at most workerMax (BRAIN_WORKER_MAX), which is 2; got 8',
        key: 'workerMin',
      },
    ]);
    const file = write('brain.config.json', JSON.stringify({ workerMin: 5 }));
    expect(load({}).problems.map((p) => [p.setting, p.source])).toEqual([['workerMin', file]]);
    expect(load({ BRAIN_WORKER_MIN: '4' }).problems).toEqual([]);
  });

  it('parses lists and booleans from text', () => {
    const loaded = load({ BRAIN_ALLOWED_HOSTS: 'brain.local, ,brain.lan', BRAIN_MIGRATE_ON_START: 'no' });
    expect(loaded.config.allowedHosts).toEqual(['brain.local', 'brain.lan']);
    expect(loaded.config.migrateOnStart).toBe(false);
    for (const [text, value] of [
      ['1', true],
      ['YES', true],
      ['false', false],
      ['0', false],
    ] as const) {
      expect(load({ BRAIN_MIGRATE_ON_START: text }).config.migrateOnStart).toBe(value);
    }
  });

  it('warns about unknown BRAIN_* variables without making them problems', () => {
    write('.env', 'BRAIN_CACHE_SIZE=10\n');
    const loaded = load({ BRAIN_PROT: '8080', BRAIN_CONFIG: '', OTHER_TOOL_PORT: '1' });
    expect(loaded.problems).toEqual([]);
    expect(loaded.warnings).toEqual([
      {
        setting: 'BRAIN_CACHE_SIZE',
        source: '.env',
        message: expect.stringContaining('BRAIN_CACHE_SIZE_MB'),
      },
      {
        setting: 'BRAIN_PROT',
        source: 'env',
        message: 'BRAIN_PROT: not a Brain setting, ignored; did you mean BRAIN_PORT?',
      },
    ]);
    expect(() => requireValidConfig(loaded)).not.toThrow();
  });

  it('requireValidConfig throws CONFIG_ERROR listing every problem', () => {
    const file = write('brain.config.json', JSON.stringify({ prot: 1 }));
    const loaded = load({ BRAIN_PORT: 'x', BRAIN_WORKER_MAX: '65' });
    expect(loaded.problems).toHaveLength(3);
    let thrown: unknown;
    try {
      requireValidConfig(loaded);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(BrainError);
    const error = thrown as BrainError;
    expect(error.code).toBe('CONFIG_ERROR');
    for (const message of messages(loaded)) expect(error.message).toContain(message);
    expect(error.message).toContain('3 problems');
    expect(error.details.issues?.map((i) => i.field).sort()).toEqual([
      'BRAIN_PORT',
      'BRAIN_WORKER_MAX',
      'prot',
    ]);
    fs.rmSync(file);
    expect(requireValidConfig(load({ BRAIN_HOME: dir })).home).toBe(dir);
  });
});

describe('loadConfig: where files come from', () => {
  /** A project directory as Claude Code starts `brain mcp` in: its .env and files belong to the project. */
  const hostileProject = () => {
    const project = path.join(dir, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, '.env'), 'NODE_ENV=staging\nBRAIN_PORT=abc\nLOG_LEVEL=loud\n');
    fs.writeFileSync(path.join(project, 'brain.config.json'), JSON.stringify({ name: 'my-app', port: 'x' }));
    return project;
  };

  it('never reads .env or brain.config.json from the working directory', () => {
    const project = hostileProject();
    const home = path.join(dir, 'home');
    const loaded = loadConfig({ env: { BRAIN_HOME: home }, cwd: project });
    expect(loaded.problems).toEqual([]);
    expect(loaded.warnings).toEqual([]);
    expect(loaded.files).toEqual([]);
    expect(loaded.config).toMatchObject({ port: 7777, nodeEnv: 'development', logLevel: 'info' });
  });

  it('reads .env and brain.config.json from BRAIN_HOME; their relative paths are relative to them', () => {
    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, '.env'), 'BRAIN_PORT=1002\nBRAIN_NOTES_PATH=my-notes\n');
    fs.writeFileSync(path.join(home, 'brain.config.json'), JSON.stringify({ port: 1001, dbPath: 'db/b.db' }));
    const loaded = loadConfig({ env: { BRAIN_HOME: home, BRAIN_BACKUP_PATH: 'bk' }, cwd: dir });
    expect(loaded.problems).toEqual([]);
    expect(loaded.files).toEqual([path.join(home, 'brain.config.json'), path.join(home, '.env')]);
    expect(loaded.config).toMatchObject({
      port: 1002,
      dbPath: path.join(home, 'db', 'b.db'),
      notesPath: path.join(home, 'my-notes'),
      backupPath: path.join(dir, 'bk'), // the environment's relative paths: the working directory
    });
  });

  it('ignores BRAIN_HOME in $BRAIN_HOME/.env with a warning, and reads ~/.brain without BRAIN_HOME', () => {
    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, '.env'), `BRAIN_HOME=${path.join(dir, 'elsewhere')}\n`);
    const loaded = loadConfig({ env: { BRAIN_HOME: home }, cwd: dir });
    expect(loaded.problems).toEqual([]);
    expect(loaded.config.home).toBe(home);
    expect(loaded.warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/^BRAIN_HOME: ignored in .*\.env, which is found through BRAIN_HOME/),
    ]);
    const defaults = loadConfig({ env: {}, cwd: dir });
    expect(defaults.config.home).toBe(path.join(os.homedir(), '.brain'));
  });

  it('reads an explicit --env-file (or BRAIN_ENV_FILE), whose BRAIN_HOME locates the config file', () => {
    const home = path.join(dir, 'srv');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, 'brain.config.json'), JSON.stringify({ logLevel: 'debug' }));
    const envFile = write('brain.env', 'BRAIN_HOME=srv\nBRAIN_PORT=1234\n');
    for (const loaded of [
      loadConfig({ env: {}, cwd: dir, envFile: 'brain.env' }),
      loadConfig({ env: { BRAIN_ENV_FILE: envFile }, cwd: dir }),
    ]) {
      expect(loaded.problems).toEqual([]);
      expect(loaded.config).toMatchObject({ home, port: 1234, logLevel: 'debug' });
      expect(loaded.files).toEqual([path.join(home, 'brain.config.json'), envFile]);
    }
    const missing = loadConfig({ env: { BRAIN_HOME: dir }, cwd: dir, envFile: 'nope.env' });
    expect(messages(missing)).toEqual([`${path.join(dir, 'nope.env')}: file not found`]);
    expect(() => requireValidConfig(missing, settingsUsedBy('mcp'))).toThrow(/nope\.env: file not found/);
  });
});

describe('loadConfig: values other programs set', () => {
  it('accepts log levels in any case and the usual other spellings', () => {
    for (const [given, level] of [
      ['INFO', 'info'],
      [' Debug ', 'debug'],
      ['warning', 'warn'],
      ['WARNING', 'warn'],
      ['err', 'error'],
      ['critical', 'fatal'],
      ['crit', 'fatal'],
      ['verbose', 'debug'],
      ['off', 'silent'],
    ] as const) {
      const loaded = load({ LOG_LEVEL: given });
      expect([loaded.config.logLevel, loaded.problems], given).toEqual([level, []]);
    }
    write('brain.config.json', JSON.stringify({ logLevel: 'Warning' }));
    expect(load({}).config.logLevel).toBe('warn');
    expect(messages(load({ LOG_LEVEL: 'loud' }))).toEqual([
      'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ]);
  });

  it('treats an unknown NODE_ENV as not production, with a warning rather than a problem', () => {
    const loaded = load({ NODE_ENV: 'staging' });
    expect(loaded.problems).toEqual([]);
    expect(loaded.config.nodeEnv).toBe('staging');
    expect(loaded.warnings).toEqual([
      {
        setting: 'NODE_ENV',
        source: 'env',
        message:
          'NODE_ENV: "staging" is not one of development, production, test; Brain treats it as not production',
        key: 'nodeEnv',
      },
    ]);
    expect(load({ NODE_ENV: 'test' }).warnings).toEqual([]);
  });
});

describe('requireValidConfig by the settings a command uses', () => {
  it('lets brain mcp and the data commands start despite a bad HTTP setting, but not brain serve', () => {
    const loaded = load({ BRAIN_PORT: 'abc', BRAIN_ALLOWED_HOSTS: 'x'.repeat(300) });
    expect(loaded.problems.map((p) => p.setting)).toEqual(['BRAIN_PORT', 'BRAIN_ALLOWED_HOSTS']);
    for (const user of ['mcp', 'cli'] as const) {
      expect(requireValidConfig(loaded, settingsUsedBy(user)).port).toBe(7777);
      expect(startupWarnings(loaded, settingsUsedBy(user)).map((w) => w.message)).toEqual([
        expect.stringMatching(/^BRAIN_PORT: expected an integer .*\(not used by this command, so ignored/),
        expect.stringMatching(/^BRAIN_ALLOWED_HOSTS: .*not used by this command/),
      ]);
    }
    expect(() => requireValidConfig(loaded, settingsUsedBy('serve'))).toThrow(/BRAIN_PORT/);
    expect(() => requireValidConfig(loaded)).toThrow(/2 problems/);
  });

  it('stops every command on a problem in a setting it uses or one not tied to a setting', () => {
    const used = load({ BRAIN_CACHE_SIZE_MB: 'lots', LOG_LEVEL: 'loud', BRAIN_PORT: 'abc' });
    let thrown: unknown;
    try {
      requireValidConfig(used, settingsUsedBy('mcp'));
    } catch (error) {
      thrown = error;
    }
    expect((thrown as BrainError).message).toContain('2 problems');
    expect((thrown as BrainError).message).toMatch(/BRAIN_CACHE_SIZE_MB[\s\S]*LOG_LEVEL/);
    expect((thrown as BrainError).message).not.toContain('BRAIN_PORT');
    write('brain.config.json', JSON.stringify({ prot: 1 }));
    expect(() => requireValidConfig(load({}), settingsUsedBy('mcp'))).toThrow(/prot: unknown setting/);
    write('brain.config.json', '{ "port": ');
    expect(() => requireValidConfig(load({}), settingsUsedBy('cli'))).toThrow(/invalid JSON/);
  });

  it('uses every setting in use today for serve, none of the reserved ones, and no HTTP one elsewhere', () => {
    const serve = settingsUsedBy('serve');
    const mcp = settingsUsedBy('mcp');
    for (const spec of SETTINGS) expect(serve.has(spec.key), spec.key).toBe(!spec.reserved);
    // Only the HTTP server's own settings (defined with httpSetting); this list names them on purpose.
    expect([...serve].filter((key) => !mcp.has(key))).toEqual([
      'metricsPort',
      'host',
      'port',
      'workers',
      'allowedHosts',
      'allowedOrigins',
      'requestTimeoutMs',
      'headersTimeoutMs',
      'mcpMaxSessions',
      'mcpMaxSessionsPerClient',
      'mcpSessionIdleMs',
      'mcpMode',
      'idempotencyTtlHours',
      'apiToken',
      'jwtSecret',
      'jwtJwksUrl',
      'jwtIssuer',
      'jwtAudience',
      'jwtTenantClaim',
      'oauthIssuer',
      'oauthJwksUrl',
      'publicUrl',
      'opaEndpoint',
      'opaFailClosed',
      'opaTimeoutMs',
      'rateRps',
      'rateBurst',
      'writeDailyLimit',
      'adminAllow',
    ]);
    expect([...mcp]).toEqual([...settingsUsedBy('cli')]);
  });
});

describe('brainConfigSchema', () => {
  it('parses settings into a full config and rejects unknown keys and crossed workers', () => {
    const config = brainConfigSchema.parse({ home: '/srv/brain', port: 8080 });
    expect(config).toMatchObject({ port: 8080, dbPath: path.join('/srv/brain', 'data', 'brain.db') });
    expect(brainConfigSchema.safeParse({ prot: 1 }).success).toBe(false);
    expect(brainConfigSchema.safeParse({ workerMin: 5, workerMax: 4 }).success).toBe(false);
  });
});

describe('checkPaths', () => {
  it('passes for a fresh home and creates nothing', () => {
    const home = path.join(dir, 'fresh');
    expect(checkPaths(load({ BRAIN_HOME: home }).config)).toEqual([]);
    expect(fs.existsSync(home)).toBe(false);
  });

  it('reports a file standing where a directory must be created', () => {
    const blocker = write('blocker', 'x');
    const problems = checkPaths(
      load({ BRAIN_HOME: blocker, BRAIN_LOG_PATH: path.join(blocker, 'logs') }).config,
    );
    expect(problems.map((p) => p.setting)).toEqual([
      'BRAIN_DB_PATH',
      'BRAIN_BACKUP_PATH',
      'BRAIN_LOG_PATH',
      'BRAIN_EXECUTION_PATH',
      'BRAIN_NOTES_PATH',
    ]);
    expect(problems[0]?.message).toBe(
      `BRAIN_DB_PATH: ${blocker} is not a directory, so ${path.join(blocker, 'data')} cannot be created`,
    );
    const own = checkPaths(load({ BRAIN_HOME: dir, BRAIN_NOTES_PATH: blocker }).config);
    expect(own.map((p) => p.message)).toEqual([`BRAIN_NOTES_PATH: ${blocker} is not a directory`]);
  });

  it('reports a database path that is a directory, and accepts an existing database file', () => {
    const asDir = checkPaths(load({ BRAIN_HOME: dir, BRAIN_DB_PATH: dir }).config);
    expect(asDir).toEqual([
      {
        setting: 'BRAIN_DB_PATH',
        source: 'filesystem',
        message: `BRAIN_DB_PATH: ${dir} is a directory; give the path of the database file`,
      },
    ]);
    const dbFile = write('brain.db', '');
    expect(checkPaths(load({ BRAIN_HOME: dir, BRAIN_DB_PATH: dbFile }).config)).toEqual([]);
  });
});

describe('config report', () => {
  it('lists every setting with its env name, file key, value and source, then the problems', () => {
    const loaded = load({ BRAIN_HOME: dir, BRAIN_PORT: '8080' });
    const text = formatConfigReport(loaded, []);
    for (const spec of SETTINGS) expect(text).toMatch(new RegExp(`^  ${spec.env}\\s+${spec.key}\\s`, 'm'));
    expect(text).toMatch(/^ {2}BRAIN_PORT\s+port\s+8080\s+env$/m);
    expect(text).toMatch(/^ {2}BRAIN_DB_PATH\s+dbPath\s+\S+brain\.db\s+BRAIN_HOME \(env\)$/m);
    expect(text).toContain('No problems.');
    const bad = load({ BRAIN_PORT: 'abc', BRAIN_PROT: '1' });
    const badText = formatConfigReport(bad, bad.problems);
    expect(badText).toContain(
      '1 problem:\n  - BRAIN_PORT: expected an integer between 0 and 65535, got "abc" (from env; it stops only brain serve, the one command that uses it)',
    );
    expect(badText).toContain('1 warning:\n  - BRAIN_PROT: not a Brain setting');
    expect(badText).not.toContain('No problems.');

    const json = configReportJson(loaded, []);
    expect(json.ok).toBe(true);
    expect(json.settings.port).toEqual({ env: 'BRAIN_PORT', value: 8080, source: 'env' });
    expect(Object.keys(json.settings)).toEqual(SETTINGS.map((s) => s.key));
    expect(configReportJson(bad, bad.problems)).toMatchObject({ ok: false, problems: bad.problems });
  });

  it('masks secret-looking settings and URL passwords in values and problems', () => {
    const token = { key: 'authToken', env: 'BRAIN_AUTH_TOKEN' } as const;
    expect(displayValue(token, 'sk-123')).toBe('****');
    expect(displayValue({ key: 'host', env: 'BRAIN_API_KEY' }, 'sk-123')).toBe('****');
    expect(displayValue({ key: 'host', env: 'BRAIN_HOST' }, 'postgres://brain:hunter2@db:5432/brain')).toBe(
      'postgres://brain:****@db:5432/brain',
    );
    expect(displayValue({ key: 'host', env: 'BRAIN_HOST' }, 'plain.host')).toBe('plain.host');

    const loaded = load({
      BRAIN_ALLOWED_ORIGINS: 'https://u:topsecret@brain.example,https://other.example',
      BRAIN_EMBEDDER: 'postgres://u:alsosecret@db/brain',
    });
    expect(loaded.config.allowedOrigins).toHaveLength(2);
    expect(messages(loaded)).toEqual([
      'BRAIN_EMBEDDER: expected one of hash, use-lite, use-lite-static, transformers, openai, none, got "postgres://u:****@db/brain"',
    ]);
    const text = formatConfigReport(loaded, loaded.problems);
    const json = JSON.stringify(configReportJson(loaded, loaded.problems));
    for (const out of [text, json]) {
      expect(out).toContain('https://u:****@brain.example');
      expect(out).not.toContain('topsecret');
      expect(out).not.toContain('alsosecret');
    }
  });
});

describe('docs/CONFIG.md', () => {
  it('lists every setting by env name and file key, and marks the reserved ones', () => {
    const docs = fs.readFileSync(fileURLToPath(new URL('../../docs/CONFIG.md', import.meta.url)), 'utf8');
    for (const spec of SETTINGS) {
      const row = docs.split('\n').find((line) => line.startsWith(`| \`${spec.env}\` |`));
      expect(row, spec.env).toBeDefined();
      expect(row).toContain(`\`${spec.key}\``);
      if (spec.reserved) expect(row, spec.env).toMatch(/reserved/);
      else expect(row, spec.env).not.toMatch(/reserved/);
    }
  });
});
