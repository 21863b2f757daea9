import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configReportJson, displayValue, formatConfigReport } from './config-report.js';
import { SETTINGS } from './config-schema.js';
import { checkPaths, loadConfig, requireValidConfig } from './load-config.js';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-config-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const load = (env: Record<string, string>, configPath?: string) => loadConfig({ env, cwd: dir, configPath });
const messages = (loaded: { problems: { message: string }[] }) =>
  loaded.problems.map((p) => p.message).join('\n');

describe('loadConfig', () => {
  it('derives every path from BRAIN_HOME and uses the documented defaults', () => {
    const home = path.join(dir, 'h');
    const { config, problems, sources } = load({ BRAIN_HOME: home });
    expect(problems).toEqual([]);
    expect(config).toMatchObject({
      home,
      dbPath: path.join(home, 'data', 'brain.db'),
      backupPath: path.join(home, 'backups'),
      logPath: path.join(home, 'logs'),
      executionPath: path.join(home, 'execution'),
      notesPath: path.join(home, 'notes'),
      host: '127.0.0.1',
      port: 7777,
      cacheSizeMb: 64,
      logLevel: 'info',
      migrateOnStart: true,
      embedder: 'hash',
      defaultTenant: 'default',
    });
    expect(sources.home).toBe('env');
    expect(sources.port).toBe('default');
  });

  it('layers default < config file < .env < environment, setting by setting', () => {
    fs.writeFileSync(
      path.join(dir, 'brain.config.json'),
      JSON.stringify({ port: 1001, cacheSizeMb: 11, busyTimeoutMs: 111, workerMax: 9 }),
    );
    fs.writeFileSync(path.join(dir, '.env'), 'BRAIN_CACHE_SIZE_MB=22\nBRAIN_BUSY_TIMEOUT_MS=222\n');
    const { config, sources, problems } = load({ BRAIN_HOME: dir, BRAIN_BUSY_TIMEOUT_MS: '333' });
    expect(problems).toEqual([]);
    expect(config.port).toBe(1001); // file over default
    expect(config.cacheSizeMb).toBe(22); // .env over file
    expect(config.busyTimeoutMs).toBe(333); // environment over .env
    expect(config.workerMax).toBe(9);
    expect(config.maxMemoryMb).toBe(512); // default
    expect(sources).toMatchObject({
      port: path.join(dir, 'brain.config.json'),
      cacheSizeMb: '.env',
      busyTimeoutMs: 'env',
    });
  });

  it('reads the file named by --config or BRAIN_CONFIG, and a missing explicit file is a problem', () => {
    const file = path.join(dir, 'custom.json');
    fs.writeFileSync(file, JSON.stringify({ logLevel: 'debug' }));
    expect(load({}, 'custom.json').config.logLevel).toBe('debug');
    expect(load({ BRAIN_CONFIG: file }).config.logLevel).toBe('debug');
    const missing = load({}, 'nope.json');
    expect(messages(missing)).toMatch(/nope\.json: file not found/);
    expect(load({}).problems).toEqual([]); // no default file: fine
  });

  it('names the variable, the limit and the value given, and keeps the default', () => {
    const loaded = load({
      BRAIN_PORT: 'abc',
      BRAIN_CACHE_SIZE_MB: '999999',
      LOG_LEVEL: 'loud',
      BRAIN_MIGRATE_ON_START: 'maybe',
      BRAIN_DEFAULT_TENANT: 'has space',
    });
    const text = messages(loaded);
    expect(text).toContain('BRAIN_PORT: expected an integer between 0 and 65535, got "abc"');
    expect(text).toContain('BRAIN_CACHE_SIZE_MB: expected an integer between 1 and 4096, got 999999');
    expect(text).toMatch(
      /LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"/,
    );
    expect(text).toMatch(/BRAIN_MIGRATE_ON_START: expected true or false, got "maybe"/);
    expect(text).toMatch(/BRAIN_DEFAULT_TENANT: expected 1-64 letters/);
    expect(loaded.problems).toHaveLength(5);
    expect(loaded.config.port).toBe(7777);
    expect(loaded.config.cacheSizeMb).toBe(64);
  });

  it('reports unknown keys, wrong types and invalid JSON in the config file', () => {
    const file = path.join(dir, 'brain.config.json');
    fs.writeFileSync(file, JSON.stringify({ prot: 8080, port: '8080' }));
    const text = messages(load({}));
    expect(text).toMatch(/prot: unknown setting \(known: home, dbPath/);
    expect(text).toMatch(/port: expected an integer between 0 and 65535, got "8080"/);
    fs.writeFileSync(file, '{ "port": 80,');
    expect(messages(load({}))).toMatch(/brain\.config\.json: invalid JSON/);
  });

  it('parses lists and booleans from text, and checks workers against each other', () => {
    const loaded = load({
      BRAIN_ALLOWED_HOSTS: 'brain.local, brain.lan',
      BRAIN_MIGRATE_ON_START: 'no',
      BRAIN_WORKER_MIN: '8',
      BRAIN_WORKER_MAX: '2',
    });
    expect(loaded.config.allowedHosts).toEqual(['brain.local', 'brain.lan']);
    expect(loaded.config.migrateOnStart).toBe(false);
    expect(messages(loaded)).toContain('BRAIN_WORKER_MIN (8) must not exceed BRAIN_WORKER_MAX (2)');
  });

  it('requireValidConfig refuses to start on any problem and lists them all', () => {
    expect(() => requireValidConfig(load({ BRAIN_PORT: 'x', BRAIN_WORKER_MAX: '0' }))).toThrow(
      expect.objectContaining({
        code: 'CONFIG_ERROR',
        message: expect.stringMatching(/BRAIN_WORKER_MAX[\s\S]*BRAIN_PORT/),
      }),
    );
    expect(requireValidConfig(load({ BRAIN_HOME: dir })).home).toBe(dir);
  });
});

describe('checkPaths', () => {
  it('passes for a fresh home and creates nothing', () => {
    const home = path.join(dir, 'fresh');
    expect(checkPaths(load({ BRAIN_HOME: home }).config)).toEqual([]);
    expect(fs.existsSync(home)).toBe(false);
  });

  it('reports a file standing where a directory must be, and a database path that is a directory', () => {
    const blocker = path.join(dir, 'blocker');
    fs.writeFileSync(blocker, 'x');
    const problems = checkPaths(load({ BRAIN_HOME: blocker }).config);
    expect(problems.map((p) => p.setting)).toEqual(
      expect.arrayContaining(['BRAIN_DB_PATH', 'BRAIN_BACKUP_PATH', 'BRAIN_NOTES_PATH']),
    );
    expect(problems[0]?.message).toMatch(/blocker is not a directory/);
    const asDir = checkPaths(load({ BRAIN_HOME: dir, BRAIN_DB_PATH: dir }).config);
    expect(asDir[0]?.message).toMatch(/is a directory; give a file path/);
  });
});

describe('config report', () => {
  it('lists every setting with its env name, value and source', () => {
    const loaded = load({ BRAIN_HOME: dir, BRAIN_PORT: '8080' });
    const text = formatConfigReport(loaded, []);
    for (const spec of SETTINGS) expect(text).toContain(spec.env);
    expect(text).toMatch(/BRAIN_PORT\s+8080\s+env/);
    expect(text).toContain('No problems.');
    const json = configReportJson(loaded, []);
    expect(json.settings.port).toEqual({ env: 'BRAIN_PORT', value: 8080, source: 'env' });
  });

  it('masks secrets and URL passwords', () => {
    expect(
      displayValue(
        { key: 'apiKey' as never, env: 'BRAIN_API_KEY', kind: 'string', description: '' },
        'sk-123',
      ),
    ).toBe('****');
    expect(
      displayValue(
        { key: 'host', env: 'BRAIN_HOST', kind: 'string', description: '' },
        'postgres://brain:hunter2@db:5432/brain',
      ),
    ).toBe('postgres://brain:****@db:5432/brain');
    const loaded = load({ BRAIN_ALLOWED_ORIGINS: 'https://u:topsecret@brain.example' });
    expect(formatConfigReport(loaded, loaded.problems)).not.toContain('topsecret');
    expect(JSON.stringify(configReportJson(loaded, loaded.problems))).not.toContain('topsecret');
  });
});
