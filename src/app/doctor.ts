import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { checkPaths } from '../config/check-paths.js';
import type { BrainConfig } from '../config/config-schema.js';
import type { LoadedConfig } from '../config/load-config.js';
import { silentLogger } from '../core/logger.js';
import { createStorage } from '../storage/create-storage.js';
import type { CheckLine } from '../surfaces/cli/check-format.js';
import type { DoctorReport } from '../surfaces/cli/doctor-commands.js';
import { type Brain, buildBrain } from './build-brain.js';
import { healthDocument } from './health-document.js';
import { lastGoodBackup } from './run-backup.js';

/** A check's outcome without its name (the entry names it), or several named lines. */
type Outcome = Omit<CheckLine, 'name'>;

/** What every check may use, opened at most once and only when a check asks. */
export interface DoctorContext {
  loaded: LoadedConfig;
  config: BrainConfig;
  now: Date;
  /** A Brain on the store (no migrations, no background work), or the reason it cannot be opened. */
  brain(): Promise<Brain | { error: string }>;
}

/**
 * One doctor check. Later issues add theirs (the sandbox, workers) by adding an entry to
 * {@link DOCTOR_CHECKS}; an entry may return several lines (the health checks of a running Brain).
 */
export interface DoctorEntry {
  name: string;
  run(ctx: DoctorContext): Promise<Outcome | CheckLine[]>;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** A running Brain answering on host:port, if one does: its /health (public, no credential needed). */
export async function probeBrain(
  host: string,
  port: number,
): Promise<{ url: string; status: string; version: string | null } | null> {
  // A wildcard bind is reached on the loopback address.
  const target = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}`;
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { status?: unknown; version?: unknown };
    if (typeof body.status !== 'string') return null;
    return { url, status: body.status, version: typeof body.version === 'string' ? body.version : null };
  } catch {
    return null;
  }
}

/** Whether host:port can be bound now (closed again at once). */
function portFree(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

async function portCheck(host: string, port: number, setting: string): Promise<Outcome> {
  if (port === 0) return { status: 'ok', message: `${setting}=0: a free port is picked at start` };
  const error = await portFree(host, port);
  if (!error) return { status: 'ok', message: `${host}:${port} is free` };
  if (error.code === 'EADDRINUSE') {
    const brain = await probeBrain(host, port);
    if (brain)
      return {
        status: 'ok',
        message: `${host}:${port} is in use by a running Brain${brain.version ? ` ${brain.version}` : ''} (health ${brain.status})`,
      };
    return {
      status: 'fail',
      message: `${host}:${port} is in use by another program`,
      fix: `stop that program, or set ${setting} to a free port`,
    };
  }
  return {
    status: 'fail',
    message: `cannot bind ${host}:${port}: ${error.code ?? error.message}`,
    fix: `set BRAIN_HOST / ${setting}`,
  };
}

/** Health items (`ok`, `warn`, `fail`) as doctor lines; the ones doctor checks itself are left out. */
function healthLines(
  checks: Record<string, { status: 'ok' | 'warn' | 'fail'; message: string }>,
): CheckLine[] {
  const own = new Set(['database', 'migrations', 'embedder', 'backup']);
  return Object.entries(checks)
    .filter(([name]) => !own.has(name))
    .map(([name, c]) => ({ name, status: c.status, message: c.message }));
}

/** Every check `brain doctor` runs, in order. */
export const DOCTOR_CHECKS: readonly DoctorEntry[] = [
  {
    name: 'config',
    async run({ loaded, config }) {
      const problems = [...loaded.problems, ...checkPaths(config)];
      if (problems.length > 0)
        return {
          status: 'fail',
          message: `${problems.length} problem(s): ${problems.map((p) => p.message).join('; ')}`,
          fix: 'brain config check lists each with its limit',
        };
      if (loaded.warnings.length > 0)
        return {
          status: 'warn',
          message: loaded.warnings.map((w) => w.message).join('; '),
          fix: 'brain config check',
        };
      return {
        status: 'ok',
        message: `valid (${loaded.files.length > 0 ? loaded.files.join(', ') : 'defaults and environment'})`,
      };
    },
  },
  {
    name: 'database',
    async run({ config }) {
      let storage: Awaited<ReturnType<typeof createStorage>>;
      try {
        storage = await createStorage(config, { logger: silentLogger });
      } catch (error) {
        return [{ name: 'database', status: 'fail', message: errorText(error), fix: 'see the message' }];
      }
      try {
        const lines: CheckLine[] = [];
        const reachable = await storage.check();
        let writable = reachable.ok;
        let why = reachable.message;
        if (storage.engine === 'sqlite') {
          try {
            fs.accessSync(config.dbPath, fs.constants.W_OK);
            fs.accessSync(path.dirname(config.dbPath), fs.constants.W_OK);
          } catch (error) {
            writable = false;
            why = `${config.dbPath} is not writable (${(error as NodeJS.ErrnoException).code})`;
          }
        }
        lines.push(
          writable
            ? {
                name: 'database',
                status: 'ok',
                message: `${storage.engine} ${storage.location}: reachable and writable`,
              }
            : {
                name: 'database',
                status: 'fail',
                message: why,
                fix: 'fix the permissions of the file and its directory, or the server',
              },
        );
        const { current, latest } = await storage.schema();
        lines.push(
          current === latest
            ? { name: 'migrations', status: 'ok', message: `schema version ${current}, current` }
            : current > latest
              ? {
                  name: 'migrations',
                  status: 'fail',
                  message: `schema version ${current} is newer than this build (${latest})`,
                  fix: 'upgrade Brain',
                }
              : {
                  name: 'migrations',
                  status: 'fail',
                  message: `schema version ${current}, this build needs ${latest}`,
                  fix: 'brain migrate',
                },
        );
        // The store's own checks read Brain's tables: only once they are there.
        const [quick] = current < latest ? [] : (await storage.integrity().check({ quick: true })).checks;
        if (!quick)
          lines.push({
            name: 'integrity',
            status: 'skipped',
            message: 'not run: the schema is not current (brain migrate first)',
          });
        else
          lines.push({
            name: 'integrity',
            status: quick.status,
            message: `${quick.name}: ${quick.message}`,
            fix:
              quick.status === 'fail'
                ? 'brain db check for the details; brain db recover (SQLite) or brain restore'
                : quick.fix,
          });
        return lines;
      } finally {
        await storage.close();
      }
    },
  },
  {
    name: 'health',
    async run(ctx) {
      const brain = await ctx.brain();
      if ('error' in brain)
        return { status: 'fail', message: `could not open Brain: ${brain.error}`, fix: 'see the message' };
      // The checks of GET /health (disk, memory, change bus or Redis, jobs…), as a server reports them.
      return healthLines((await healthDocument(brain)).checks);
    },
  },
  {
    name: 'embedder',
    async run(ctx) {
      const brain = await ctx.brain();
      if ('error' in brain) return { status: 'skipped', message: 'Brain could not be opened' };
      const embedder = brain.embedder;
      if (!embedder) {
        const e = await brain.embeddings();
        return e.provider === 'none'
          ? { status: 'ok', message: 'none configured: recall is text-only' }
          : {
              status: 'fail',
              message: e.problem ?? `${e.provider} did not load`,
              fix: 'check BRAIN_EMBEDDER and its settings (brain config check), or BRAIN_EMBEDDER=none',
            };
      }
      const started = performance.now();
      try {
        const [vector] = await embedder.embed(['brain doctor']);
        if (!vector || vector.length !== embedder.dimensions)
          throw new Error(`answered ${vector?.length ?? 0} dimensions, not ${embedder.dimensions}`);
        return {
          status: 'ok',
          message: `${embedder.model} answered in ${Math.round(performance.now() - started)} ms (${embedder.dimensions} dimensions)`,
        };
      } catch (error) {
        return {
          status: 'fail',
          message: `${embedder.model} did not answer: ${errorText(error)}`,
          fix: 'check BRAIN_EMBEDDING_URL, BRAIN_EMBEDDING_API_KEY and the model server, or BRAIN_EMBEDDER=none',
        };
      }
    },
  },
  {
    name: 'backups',
    async run({ config, now }) {
      const last = await lastGoodBackup(config, now);
      if (!last)
        return {
          status: 'fail',
          message: `no good backup in ${config.backupPath}`,
          fix: `brain backup (brain serve takes one on BRAIN_BACKUP_CRON, now ${JSON.stringify(config.backupCron)})`,
        };
      const hours = last.ageSeconds / 3600;
      if (hours > config.backupMaxAgeHours)
        return {
          status: 'fail',
          message: `the newest good backup ${last.file} is ${hours.toFixed(1)} h old (over BRAIN_BACKUP_MAX_AGE_HOURS=${config.backupMaxAgeHours})`,
          fix: 'brain backup; then check the backup job (brain jobs) and its dead letters',
        };
      return { status: 'ok', message: `newest good backup ${last.file}, ${hours.toFixed(1)} h old` };
    },
  },
  {
    name: 'ports',
    async run({ config }) {
      const lines: CheckLine[] = [
        { name: 'port', ...(await portCheck(config.host, config.port, 'BRAIN_PORT')) },
      ];
      if (config.metricsPort !== undefined)
        lines.push({
          name: 'metrics_port',
          ...(await portCheck(config.host, config.metricsPort, 'BRAIN_METRICS_PORT')),
        });
      return lines;
    },
  },
  {
    name: 'permissions',
    async run({ config }) {
      const stat = fs.statSync(config.home, { throwIfNoEntry: false });
      if (!stat)
        return {
          status: 'warn',
          message: `BRAIN_HOME ${config.home} does not exist yet (created at the first start)`,
        };
      const mode = stat.mode & 0o777;
      if ((mode & 0o007) !== 0)
        return {
          status: 'fail',
          message: `BRAIN_HOME ${config.home} is open to every user (mode ${mode.toString(8)}): the database, keys and backups are readable`,
          fix: `chmod 700 ${config.home}`,
        };
      return { status: 'ok', message: `BRAIN_HOME ${config.home} is private (mode ${mode.toString(8)})` };
    },
  },
];

/**
 * `brain doctor`: every entry of `checks`, in order, each failure its own line (a check that throws is
 * a ✗ with its reason, never a stack trace). `ok` unless a line is ✗; warnings do not fail.
 */
export async function runDoctor(
  loaded: LoadedConfig,
  options: { now?: Date; checks?: readonly DoctorEntry[] } = {},
): Promise<DoctorReport> {
  const config = loaded.config;
  let opened: Promise<Brain | { error: string }> | null = null;
  const ctx: DoctorContext = {
    loaded,
    config,
    now: options.now ?? new Date(),
    brain: () => {
      opened ??= buildBrain(config, {
        logger: pino({ level: 'silent' }),
        migrate: false,
        prepareVectors: false,
        embedQueue: false,
      }).catch((error: unknown) => ({ error: errorText(error) }));
      return opened;
    },
  };
  const checks: CheckLine[] = [];
  try {
    for (const entry of options.checks ?? DOCTOR_CHECKS) {
      try {
        const outcome = await entry.run(ctx);
        checks.push(...(Array.isArray(outcome) ? outcome : [{ name: entry.name, ...outcome }]));
      } catch (error) {
        checks.push({
          name: entry.name,
          status: 'fail',
          message: `the check failed: ${errorText(error)}`,
          fix: 'see the message',
        });
      }
    }
  } finally {
    const brain = opened ? await (opened as Promise<Brain | { error: string }>) : null;
    if (brain && !('error' in brain)) await brain.close();
  }
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}
