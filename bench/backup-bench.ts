/**
 * Backup and restore under a write load (issue 11):
 *
 *   npm run build && npx tsc -p tsconfig.bench.json && node --expose-gc dist-bench/bench/backup-bench.js \
 *     [--size-mb 1024] [--pg-size-mb 256] [--engines sqlite,postgres] [--rate 200] [--baseline-s 20]
 *
 * For each engine: a store of about `--size-mb` (memories with content and vectors, loaded through
 * rememberMany; the SQLite file is cached under /tmp keyed by its size, so only the first run builds
 * it), then a steady write load (single remembers through the service at `--rate` per second, each
 * awaited) measured first alone for `--baseline-s`, then while `runBackup` runs in the same process —
 * as the scheduled job runs inside `brain serve`. Then the backup's duration and size, and the time to
 * restore it into an empty store (decompress, verify, swap, migrate). PostgreSQL runs on a throwaway
 * durable cluster (fsync on) at a smaller default size: loading 1 GB through the service takes far
 * longer there.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type Brain, buildBrain } from '../src/app/build-brain.js';
import { restoreConfiguredStore, runBackup } from '../src/app/run-backup.js';
import type { BrainConfig } from '../src/config/config-schema.js';
import { loadConfig, requireValidConfig } from '../src/config/load-config.js';
import {
  createTestDatabase,
  postgresUnavailable,
  startLocalPostgres,
} from '../test/services/local-postgres.js';
import { collectGarbage, removeHome, yieldToLoop } from './bench-brain.js';
import { createRandom, generateMemory } from './corpus.js';
import { type Figure, figure, formatTable, latencyFigures, summarize } from './stats.js';

interface Options {
  sizeMb: number;
  pgSizeMb: number;
  engines: string[];
  rate: number;
  baselineS: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    sizeMb: 1024,
    pgSizeMb: 256,
    engines: ['sqlite', 'postgres'],
    rate: 200,
    baselineS: 20,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1] ?? ''];
    if (flag === '--size-mb') options.sizeMb = Number(value);
    else if (flag === '--pg-size-mb') options.pgSizeMb = Number(value);
    else if (flag === '--engines') options.engines = value.split(',');
    else if (flag === '--rate') options.rate = Number(value);
    else if (flag === '--baseline-s') options.baselineS = Number(value);
    else throw new Error(`unknown option ${flag}`);
  }
  return options;
}

const BATCH = 1000;
const PROJECT = 'bench';

function configOf(home: string, env: Record<string, string>): BrainConfig {
  return requireValidConfig(
    loadConfig({ env: { BRAIN_HOME: home, LOG_LEVEL: 'silent', ...env }, cwd: home }),
  );
}

function open(config: BrainConfig): Promise<Brain> {
  return buildBrain(config, { logger: pino({ level: 'silent' }), migrate: true, prepareVectors: false });
}

/** A memory of about 1 KB: several corpus sentences, so the file is mostly rows, not index overhead. */
function bigMemory(rand: () => number, i: number): string {
  const parts: string[] = [];
  for (let k = 0; k < 8; k++) parts.push(generateMemory(rand, i * 8 + k).content);
  return `${parts.join(' ')} (#${i})`;
}

/** Loads memories until the store is `sizeMb` on disk; returns the seconds it took. */
async function fill(brain: Brain, sizeMb: number): Promise<number> {
  const rand = createRandom(7);
  const start = performance.now();
  let i = 0;
  let lastReport = 0;
  while ((await brain.storage.sizeBytes()) < sizeMb * 1024 * 1024) {
    const batch = Array.from({ length: BATCH }, () => ({ content: bigMemory(rand, i++), project: PROJECT }));
    await brain.services.memory.rememberMany(brain.scope, batch);
    await brain.settle();
    await yieldToLoop();
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      const mb = (await brain.storage.sizeBytes()) / 1048576;
      process.stderr.write(`  loaded ${i} memories, ${mb.toFixed(0)} MB\n`);
    }
  }
  return (performance.now() - start) / 1000;
}

/**
 * Single remembers at `rate` per second, each awaited, until `until()` says stop; the latency of each.
 * Paced from a start time, so a slow write is followed by the next at once, not by a fixed pause.
 */
async function writeLoad(brain: Brain, rate: number, until: () => boolean, tag: string): Promise<number[]> {
  const samples: number[] = [];
  const interval = 1000 / rate;
  const start = performance.now();
  for (let n = 0; !until(); n++) {
    const due = start + n * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else await yieldToLoop();
    const t = performance.now();
    await brain.services.memory.remember(brain.scope, {
      content: `${tag} write ${n} at ${Date.now()}`,
      project: PROJECT,
    });
    samples.push(performance.now() - t);
  }
  return samples;
}

/** The process's peak RSS while `work` runs, sampled every 50 ms. */
async function peakRss<T>(work: () => Promise<T>): Promise<{ value: T; peakMb: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  try {
    const value = await work();
    return { value, peakMb: Math.max(peak, process.memoryUsage().rss) / 1048576 };
  } finally {
    clearInterval(timer);
  }
}

interface EngineRun {
  name: string;
  env: Record<string, string>;
  /** The store is there already (the cached SQLite file): no load. */
  cached: boolean;
  sizeMb: number;
  /** Settings of an empty store to restore into. */
  restoreEnv: () => Record<string, string>;
}

async function benchEngine(run: EngineRun, options: Options, work: string): Promise<Figure[]> {
  const home = path.join(work, run.name);
  fs.mkdirSync(home, { recursive: true });
  const config = configOf(home, run.env);
  const brain = await open(config);
  const figures: Figure[] = [];
  try {
    if (!run.cached) {
      process.stderr.write(`${run.name}: loading about ${run.sizeMb} MB…\n`);
      figures.push(figure('load (rememberMany) time', await fill(brain, run.sizeMb), 's'));
    }
    const bytes = await brain.storage.sizeBytes();
    const { total } = await brain.services.memory.list(brain.scope, { limit: 1 });
    figures.push(figure('store size', bytes / 1048576, 'MB'), figure('memories', total, ''));
    collectGarbage();

    process.stderr.write(`${run.name}: ${options.baselineS} s of writes without a backup…\n`);
    const baselineStart = performance.now();
    const baselineEnd = baselineStart + options.baselineS * 1000;
    const { value: baseline, peakMb: baselineRss } = await peakRss(() =>
      writeLoad(brain, options.rate, () => performance.now() > baselineEnd, 'baseline'),
    );
    const baselineRate = baseline.length / ((performance.now() - baselineStart) / 1000);
    collectGarbage();

    process.stderr.write(`${run.name}: writes during a backup…\n`);
    let done = false;
    const backupStart = performance.now();
    const {
      value: [backup, during],
      peakMb: backupRss,
    } = await peakRss(async () => {
      const load = writeLoad(brain, options.rate, () => done, 'during');
      const taken = await runBackup(config).finally(() => {
        done = true;
      });
      return [taken, await load] as const;
    });
    const backupS = (performance.now() - backupStart) / 1000;

    figures.push(
      ...latencyFigures(
        `write, no backup (${baseline.length} at ${options.rate}/s)`,
        summarize(baseline),
      ).slice(0, 3),
      ...latencyFigures(`write, during backup (${during.length})`, summarize(during)).slice(0, 3),
      figure('write max, during backup', summarize(during).max, 'ms'),
      figure('writes per second, no backup', baselineRate, '/s'),
      figure('writes per second, during backup', during.length / backupS, '/s'),
      figure('peak RSS, writes only', baselineRss, 'MB'),
      figure('peak RSS, writes and backup', backupRss, 'MB'),
      figure('backup duration', backupS, 's'),
      figure('backup size (gzip)', backup.bytes / 1048576, 'MB'),
      figure('backup throughput (store size / duration)', bytes / 1048576 / backupS, 'MB/s'),
    );
    await brain.close();

    process.stderr.write(`${run.name}: restoring into an empty store…\n`);
    const target = path.join(work, `${run.name}-restore`);
    fs.mkdirSync(target, { recursive: true });
    const targetConfig = configOf(target, { ...run.restoreEnv(), BRAIN_BACKUP_PATH: config.backupPath });
    if (targetConfig.databaseUrl) {
      const t = await open(targetConfig);
      await t.maintenance.set(true, 'bench restore');
      await t.close();
    }
    const restoreStart = performance.now();
    const outcome = await restoreConfiguredStore(
      targetConfig,
      { file: backup.file },
      { cwd: target, confirm: async () => true },
    );
    const restoreS = (performance.now() - restoreStart) / 1000;
    if (outcome.status !== 'restored') throw new Error('the restore did not run');
    figures.push(
      figure('restore time (decompress, verify, swap, migrate)', restoreS, 's'),
      figure('memories restored', outcome.plan.tables.memories ?? 0, ''),
    );
    fs.rmSync(backup.file, { force: true });
    fs.rmSync(`${backup.file}.sha256`, { force: true });
    return figures;
  } finally {
    await brain.close();
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-backup-bench-'));
  const cpus = os.cpus();
  console.log(
    `backup bench: node ${process.version}, ${cpus.length} cores (${cpus[0]?.model ?? '?'}), load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  try {
    if (options.engines.includes('sqlite')) {
      // The built file is kept between runs: only the first run pays for the load.
      const cache = path.join(os.tmpdir(), `brain-backup-bench-sqlite-${options.sizeMb}mb`);
      const dbPath = path.join(cache, 'brain.db');
      const cached = fs.existsSync(path.join(cache, 'complete'));
      if (!cached) fs.rmSync(cache, { recursive: true, force: true });
      fs.mkdirSync(cache, { recursive: true });
      const figures = await benchEngine(
        {
          name: 'sqlite',
          env: { BRAIN_DB_PATH: dbPath },
          cached,
          sizeMb: options.sizeMb,
          restoreEnv: () => ({}),
        },
        options,
        work,
      );
      fs.writeFileSync(path.join(cache, 'complete'), new Date().toISOString());
      console.log(formatTable(`SQLite, ${cached ? 'cached' : 'built'} file ${dbPath}`, figures));
    }
    if (options.engines.includes('postgres')) {
      const missing = postgresUnavailable();
      if (missing) console.log(`PostgreSQL skipped: ${missing}`);
      else {
        const cluster = await startLocalPostgres({ durable: true });
        try {
          const figures = await benchEngine(
            {
              name: 'postgres',
              env: { BRAIN_DATABASE_URL: createTestDatabase(cluster.baseUrl, 'brain_backup_bench') },
              cached: false,
              sizeMb: options.pgSizeMb,
              restoreEnv: () => ({
                BRAIN_DATABASE_URL: createTestDatabase(cluster.baseUrl, 'brain_restore_bench'),
              }),
            },
            options,
            work,
          );
          console.log(formatTable('PostgreSQL (throwaway durable cluster on 127.0.0.1)', figures));
        } finally {
          cluster.stop();
        }
      }
    }
  } finally {
    removeHome(work);
  }
}

await main();
