import { Command, CommanderError, Option } from 'commander';
import { BrainError, invalidInput, toBrainError } from '../../core/errors.js';
import type { EvalProgress, EvalReport } from '../../modules/eval/locomo-eval.js';
import type { SurfaceContext } from '../brain-services.js';
import { type BackupRuntime, registerBackupCommands } from './backup-commands.js';
import {
  formatError,
  formatForget,
  formatList,
  formatMemory,
  formatRecall,
  formatRemember,
} from './cli-format.js';
import { type DbRuntime, registerDbCommands } from './db-commands.js';
import { type DoctorRuntime, registerDoctorCommands } from './doctor-commands.js';
import { formatEvalReport, progressBar } from './eval-format.js';
import { type ExecRuntime, registerExecCommands } from './exec-commands.js';
import { type JobsRuntime, registerJobsCommands } from './jobs-commands.js';
import { type KeysRuntime, registerKeysCommands } from './keys-commands.js';
import {
  formatSlowQueries,
  SLOW_QUERIES_LIMIT,
  type SlowQueriesRuntime,
  slowQueriesRequest,
} from './slow-queries.js';
import { registerTierCommands } from './tier-commands.js';
import { registerTransferCommands, type TransferRuntime } from './transfer-commands.js';

/** Where the CLI writes. The real program passes stdout/stderr; tests capture both. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** Options every command accepts. */
export interface GlobalOptions {
  /** A config file instead of $BRAIN_HOME/brain.config.json. */
  config?: string;
  /** A `.env` file instead of $BRAIN_HOME/.env. */
  envFile?: string;
}

export interface EvalCommandOptions {
  data: string;
  ks: number[];
  embedder?: string;
  onProgress?: (progress: EvalProgress) => void;
}

export interface BrainStatus {
  version: string;
  database: string;
  memories: number;
  embeddings: {
    provider: string;
    model: string | null;
    dimensions: number | null;
    problem: string | null;
    queue: { backlog: number; embedded: number; perSecond: number; lastError: string | null } | null;
  };
}

function formatStatus(s: BrainStatus): string {
  const e = s.embeddings;
  const lines = [
    `brain ${s.version}`,
    `database: ${s.database} (${s.memories} memories)`,
    `embedder: ${e.provider}${e.model ? ` (${e.model}, ${e.dimensions} dimensions)` : ''}`,
  ];
  if (e.problem) lines.push(`problem: ${e.problem}`);
  if (e.queue)
    lines.push(
      `embedding queue: ${e.queue.backlog} waiting` +
        (e.queue.backlog > 0 ? ' (run `brain reembed` to embed them now)' : '') +
        (e.queue.lastError ? `; last error: ${e.queue.lastError}` : ''),
    );
  return lines.join('\n');
}

/** What `brain maintenance` shows (the module's MaintenanceState). */
export interface MaintenanceView {
  on: boolean;
  source: 'database' | 'file' | null;
  reason: string | null;
  since: string | null;
}

function formatMaintenance(m: MaintenanceView): string {
  if (!m.on) return 'maintenance mode is off: reads and writes are served';
  const why = m.reason ? ` (${m.reason})` : '';
  const where =
    m.source === 'file'
      ? 'by the MAINTENANCE_MODE file in BRAIN_HOME (remove it to end it)'
      : 'for every process on this store';
  return `maintenance mode is on${why} since ${m.since}, ${where}: writes and new sessions are refused with 503, reads are served`;
}

export interface ServeOptions {
  host?: string;
  port?: number;
  migrate: boolean;
}

/** A Brain opened for one command, and how to close it. */
export interface OpenedBrain {
  ctx: SurfaceContext;
  close(): Promise<void>;
}

/**
 * What the CLI needs from the composition root (src/app): opening a Brain, running the servers,
 * migrating, checking config. Keeping it an interface lets the CLI stay a surface that never touches a
 * driver or reads config itself.
 */
/** What `brain store copy` reports (see app/store-copy.ts). */
export interface StoreCopyResult {
  from: string;
  to: string;
  memories: { source: number; copied: number; already: number };
  sessions: { source: number; copied: number; already: number };
  /** Memory versions (memory_history), copied after the memories. */
  versions: { source: number; copied: number; already: number };
  verified: {
    memories: number;
    mismatched: number;
    missing: number;
    checksum: string;
    /** Source versions checked, and those missing or different in the destination. */
    versions: number;
    versions_missing: number;
  };
  seconds: number;
  perSecond: number;
}

export interface CliRuntime
  extends KeysRuntime,
    SlowQueriesRuntime,
    JobsRuntime,
    BackupRuntime,
    TransferRuntime,
    DbRuntime,
    DoctorRuntime,
    ExecRuntime {
  version: string;
  open(global: GlobalOptions): Promise<OpenedBrain>;
  /** Runs the HTTP server until a signal ends it. */
  serve(global: GlobalOptions, options: ServeOptions): Promise<void>;
  /** Runs MCP over stdio until the client goes away or a signal ends it. */
  mcp(global: GlobalOptions, options: { migrate: boolean }): Promise<void>;
  migrate(global: GlobalOptions): Promise<{ applied: string[]; current: number }>;
  checkConfig(global: GlobalOptions, json: boolean): { text: string; ok: boolean };
  /** The store and its embeddings: provider, model, backlog of the background embedder. */
  status(global: GlobalOptions): Promise<BrainStatus>;
  /**
   * Embeds every queued memory (after a model change: all of them) in the foreground, reporting
   * progress, and resolves when the backlog is empty.
   */
  /** Copies a whole store between engines and verifies it (`brain store copy`). */
  storeCopy(
    global: GlobalOptions,
    options: { from: string; to: string },
    onProgress: (done: number, total: number) => void,
  ): Promise<StoreCopyResult>;
  reembed(global: GlobalOptions, onProgress: (done: number, total: number) => void): Promise<BrainStatus>;
  /** Maintenance mode of the store: shown, or turned on or off (`change`). */
  maintenance(
    global: GlobalOptions,
    change: { on: boolean; reason: string | null } | null,
  ): Promise<MaintenanceView>;
  /** Runs a retrieval evaluation on LoCoMo-format data in a temporary store. */
  evaluate(
    global: GlobalOptions,
    options: EvalCommandOptions,
  ): Promise<{ report: EvalReport; embedder: string }>;
}

/** Exit codes: 0 done, 1 failed (storage, config, internal), 2 bad usage or input, 3 not found. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;

function exitCodeOf(error: BrainError): number {
  if (error.code === 'INVALID_INPUT') return EXIT.usage;
  if (error.code === 'NOT_FOUND') return EXIT.notFound;
  return EXIT.failed;
}

/**
 * A number when the flag looks like one; otherwise the raw text, so the module's schema names the
 * field and its limit ("k: must be a number") exactly as MCP and HTTP callers see it.
 */
function numeric(value: string): number | string {
  return /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
}

/** `--k 1,5,10` → [1, 5, 10], each an integer from 1 to 100. */
function parseKs(value: string): number[] {
  const ks = value.split(',').map((s) => s.trim());
  for (const k of ks) {
    if (!/^\d+$/.test(k) || Number(k) < 1 || Number(k) > 100)
      throw invalidInput(
        'k',
        `must be integers from 1 to 100, comma-separated (e.g. 1,5,10,20); got ${JSON.stringify(value)}`,
      );
  }
  return ks.map(Number);
}

/** `--tags a,b --tags c` → ['a', 'b', 'c']. */
function collectList(value: string, previous: string[] | undefined): string[] {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return [...(previous ?? []), ...parts];
}

function parseMetadata(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw invalidInput('metadata', 'must be a JSON object, e.g. --metadata \'{"source":"cli"}\'');
  }
}

/** Drops undefined values so that strict schemas see only what the user gave. */
function defined(input: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

interface FilterFlags {
  project?: string;
  session?: string;
  type?: string[];
  tags?: string[];
  since?: string;
  until?: string;
}

function filterInput(flags: FilterFlags): Record<string, unknown> {
  return defined({
    project: flags.project,
    session: flags.session,
    types: flags.type,
    tags: flags.tags,
    since: flags.since,
    until: flags.until,
  });
}

function addFilterOptions(command: Command): Command {
  return command
    .option('--project <name>', 'only memories of this project')
    .option('--session <id>', 'only memories of this session')
    .option('--type <type>', 'only memories of this type (repeatable or comma-separated)', collectList)
    .option('--tags <tags>', 'only memories with all these tags (repeatable or comma-separated)', collectList)
    .option('--since <iso>', 'only memories created at or after this ISO 8601 time')
    .option('--until <iso>', 'only memories created before this ISO 8601 time');
}

/** Builds the `brain` command tree. `state.code` receives the exit code of the command that ran. */
function buildProgram(runtime: CliRuntime, io: CliIo, state: { code: number }): Command {
  const program = new Command('brain')
    .description('Brain: long-term memory for AI assistants, over MCP, HTTP and this CLI.')
    .version(runtime.version, '-v, --version', 'print the version')
    .option('-c, --config <path>', 'config file (default: $BRAIN_HOME/brain.config.json; env BRAIN_CONFIG)')
    .option('--env-file <path>', '.env file (default: $BRAIN_HOME/.env; env BRAIN_ENV_FILE)')
    .showHelpAfterError('(run brain --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
    });

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  const print = (json: boolean | undefined, value: unknown, human: () => string) =>
    io.out(json ? JSON.stringify(value, null, 2) : human());

  /** Opens the Brain for one data command, runs it, and always closes the database. */
  const withBrain = async (run: (ctx: SurfaceContext) => Promise<void>) => {
    const opened = await runtime.open(globals());
    try {
      await run(opened.ctx);
    } finally {
      await opened.close();
    }
  };

  program
    .command('remember')
    .description('store a memory and print its id')
    .argument('<content>', 'the text to remember (at most 64 KiB)')
    .option('--key <key>', 'stable name; remembering with an existing key replaces that memory')
    .option('--type <type>', 'fact, preference, event, instruction, decision, note… (default fact)')
    .option('--tags <tags>', 'labels, comma-separated or repeated (at most 64 of 64 characters)', collectList)
    .option('--importance <0..1>', 'how much the memory matters, 0..1 (default 0.5)', numeric)
    .option('--project <name>', 'project the memory belongs to')
    .option('--session <id>', 'session that produced it')
    .option('--ttl-seconds <n>', 'forget automatically after this many seconds', numeric)
    .option('--expires-at <iso>', 'forget automatically at this ISO 8601 time')
    .option('--metadata <json>', 'a JSON object stored with the memory (at most 16 KiB)')
    .option('--supersedes <id>', 'the memory this one replaces (it leaves recall; as_of still sees it)')
    .option('--json', 'print JSON')
    .action(async (content: string, flags) =>
      withBrain(async (ctx) => {
        const input = defined({
          content,
          supersedes: flags.supersedes,
          key: flags.key,
          type: flags.type,
          tags: flags.tags,
          importance: flags.importance,
          project: flags.project,
          session: flags.session,
          ttl_seconds: flags.ttlSeconds,
          expires_at: flags.expiresAt,
          metadata: parseMetadata(flags.metadata),
        });
        const result = await ctx.services.memory.remember(ctx.scope, input);
        print(flags.json, result, () => formatRemember(result));
      }),
    );

  addFilterOptions(
    program
      .command('recall')
      .description('find the memories that best match a query (hybrid text + vector search)')
      .argument('<query>', 'what to look for')
      .option('-k, --k <n>', 'how many memories, 1..100 (default 10)', numeric),
  )
    .option('--include-cold', 'search the cold tier too')
    .option('--as-of <iso>', 'answer as the store stood at this ISO 8601 time')
    .option(
      '--in-session <id>',
      "the session you are in: adds its recent episodes, keeps other sessions' hits",
    )
    .option('--json', 'print JSON with every score signal')
    .action(async (query: string, flags) =>
      withBrain(async (ctx) => {
        const input = defined({
          query,
          k: flags.k,
          ...filterInput(flags),
          include_cold: flags.includeCold,
          as_of: flags.asOf,
          in_session: flags.inSession,
        });
        const result = await ctx.services.memory.recall(ctx.scope, input);
        print(flags.json, result, () => formatRecall(result));
      }),
    );

  program
    .command('get')
    .description('print one memory in full')
    .argument('<id>', 'memory id (mem_…)')
    .option('--json', 'print JSON')
    .action(async (id: string, flags) =>
      withBrain(async (ctx) => {
        const memory = await ctx.services.memory.get(ctx.scope, { id });
        print(flags.json, memory, () => formatMemory(memory));
      }),
    );

  addFilterOptions(program.command('list').description('list memories, newest first, a page at a time'))
    .option('--limit <n>', 'page size, 1..200 (default 20)', numeric)
    .option('--offset <n>', 'skip this many (the next_offset of the previous page)', numeric)
    .addOption(
      new Option('--sort <field>', 'sort field').choices([
        'created_at',
        'updated_at',
        'accessed_at',
        'importance',
        'memory_score',
      ]),
    )
    .addOption(new Option('--order <order>', 'sort order').choices(['asc', 'desc']))
    .option('--include-cold', 'list the cold tier too')
    .option('--json', 'print JSON')
    .action(async (flags) =>
      withBrain(async (ctx) => {
        const input = defined({
          ...filterInput(flags),
          include_cold: flags.includeCold,
          limit: flags.limit,
          offset: flags.offset,
          sort: flags.sort,
          order: flags.order,
        });
        const result = await ctx.services.memory.list(ctx.scope, input);
        const offset = typeof flags.offset === 'number' ? flags.offset : 0;
        print(flags.json, result, () => formatList(result, offset));
      }),
    );

  program
    .command('update')
    .description('change a memory by id (or by --key)')
    .argument('[id]', 'memory id (mem_…)')
    .option('--key <key>', 'the memory with this key instead of an id')
    .option('--project <name>', 'project of the keyed memory')
    .option('--content <text>', 'new content')
    .option('--type <type>', 'new type')
    .option('--tags <tags>', 'replace the tags (comma-separated or repeated)', collectList)
    .option('--importance <0..1>', 'new importance', numeric)
    .option('--metadata <json>', 'replace the metadata (a JSON object)')
    .option('--expires-at <iso>', 'new expiry time')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, flags) =>
      withBrain(async (ctx) => {
        const input = defined({
          id,
          key: flags.key,
          project: flags.project,
          content: flags.content,
          type: flags.type,
          tags: flags.tags,
          importance: flags.importance,
          metadata: parseMetadata(flags.metadata),
          expires_at: flags.expiresAt,
        });
        const memory = await ctx.services.memory.update(ctx.scope, input);
        print(flags.json, memory, () => `updated ${memory.id}\n\n${formatMemory(memory)}`);
      }),
    );

  program
    .command('forget')
    .description('forget a memory by id (or by --key); soft by default, --hard purges the content')
    .argument('[id]', 'memory id (mem_…)')
    .option('--key <key>', 'the memory with this key instead of an id')
    .option('--project <name>', 'project of the keyed memory')
    .option('--hard', 'purge the content for good instead of keeping a recoverable tombstone')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, flags) =>
      withBrain(async (ctx) => {
        const input = defined({ id, key: flags.key, project: flags.project, hard: flags.hard });
        const result = await ctx.services.memory.forget(ctx.scope, input);
        if (result.forgotten === 0) throw new BrainError('NOT_FOUND', `memory not found: ${id ?? flags.key}`);
        print(flags.json, result, () => formatForget(result));
      }),
    );

  program
    .command('serve')
    .description('run the HTTP server: MCP Streamable HTTP at /mcp, health at /health/live')
    .option('--host <host>', 'interface to bind (default 127.0.0.1; env BRAIN_HOST)')
    .option('--port <port>', 'port to bind (default 7777; env BRAIN_PORT)', numeric)
    .option('--no-migrate', 'do not apply pending migrations at start')
    .action(async (flags) => {
      if (
        flags.port !== undefined &&
        !(Number.isInteger(flags.port) && flags.port >= 0 && flags.port <= 65535)
      ) {
        throw invalidInput('port', `must be an integer from 0 to 65535, got ${JSON.stringify(flags.port)}`);
      }
      await runtime.serve(globals(), { host: flags.host, port: flags.port, migrate: flags.migrate });
    });

  program
    .command('mcp')
    .description('run MCP over stdio, for desktop clients (nothing but protocol goes to stdout)')
    .option('--no-migrate', 'do not apply pending migrations at start')
    .action(async (flags) => runtime.mcp(globals(), { migrate: flags.migrate }));

  program
    .command('migrate')
    .description('apply pending database migrations')
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const report = await runtime.migrate(globals());
      print(flags.json, report, () =>
        report.applied.length > 0
          ? `applied ${report.applied.join(', ')}; the database is at schema version ${report.current}`
          : `the database is up to date at schema version ${report.current}`,
      );
    });

  program
    .command('maintenance')
    .description('show maintenance mode, or turn it on or off for every process on this store')
    .argument('[state]', 'on or off')
    .option('--reason <text>', 'why; said in every refusal while it is on')
    .option('--json', 'print JSON')
    .action(async (state: string | undefined, flags) => {
      if (state !== undefined && state !== 'on' && state !== 'off')
        throw invalidInput('state', `must be on or off, got ${JSON.stringify(state)}`);
      if (flags.reason !== undefined && state !== 'on')
        throw invalidInput('reason', 'goes with `brain maintenance on`');
      const result = await runtime.maintenance(
        globals(),
        state === undefined ? null : { on: state === 'on', reason: flags.reason ?? null },
      );
      print(flags.json, result, () => formatMaintenance(result));
    });

  program
    .command('status')
    .description('show the database, the embedder and the backlog of memories waiting for a vector')
    .option(
      '--slow-queries',
      'instead, list the slowest statements recorded in query_log (BRAIN_SLOW_QUERY_MS)',
    )
    .option(
      '--limit <n>',
      `with --slow-queries: how many, 1..${SLOW_QUERIES_LIMIT.max} (default 20)`,
      numeric,
    )
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const slow = slowQueriesRequest(flags);
      if (slow) {
        const report = await runtime.slowQueries(globals(), slow);
        print(flags.json, report, () => formatSlowQueries(report));
        return;
      }
      const status = await runtime.status(globals());
      print(flags.json, status, () => formatStatus(status));
    });

  const store = program.command('store').description('whole-store operations');
  store
    .command('copy')
    .description(
      'copy every memory, vector and session between stores (SQLite and PostgreSQL, either way), then verify counts and checksums; running it again changes nothing',
    )
    .requiredOption('--from <store>', 'sqlite:PATH or postgres://user:pw@host:port/db')
    .requiredOption('--to <store>', 'sqlite:PATH or postgres://user:pw@host:port/db')
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const tty = process.stderr.isTTY === true && !flags.json;
      const report = await runtime.storeCopy(globals(), { from: flags.from, to: flags.to }, (done, total) => {
        if (tty) process.stderr.write(`\r${progressBar('copy', done, total)}${done === total ? '\n' : ''}`);
      });
      print(flags.json, report, () =>
        [
          `copied ${report.memories.copied} of ${report.memories.source} memories (${report.memories.already} already there) and ${report.sessions.copied} of ${report.sessions.source} sessions, ${report.versions.copied} of ${report.versions.source} memory versions`,
          `from ${report.from}`,
          `to   ${report.to}`,
          `verified ${report.verified.memories} memories and ${report.verified.versions} versions, checksum ${report.verified.checksum}, in ${report.seconds.toFixed(1)} s (${Math.round(report.perSecond)} memories/s)`,
        ].join('\n'),
      );
    });

  program
    .command('reembed')
    .description(
      'embed every memory waiting for a vector of the active model now (after a model change: all)',
    )
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const tty = process.stderr.isTTY === true && !flags.json;
      const status = await runtime.reembed(globals(), (done, total) => {
        if (tty) process.stderr.write(`\r${progressBar('embed', done, total)}${done === total ? '\n' : ''}`);
      });
      print(flags.json, status, () => formatStatus(status));
    });

  program
    .command('eval')
    .description(
      'measure recall on LoCoMo-format data (no LLM): turn and session recall@k, MRR, per category',
    )
    .requiredOption('--data <file>', 'LoCoMo-format JSON (conversations with qa and evidence)')
    .option('--k <list>', 'cut-offs, comma-separated (default 1,5,10,20)', '1,5,10,20')
    .option(
      '--embedder <name>',
      'evaluate this embedder instead of the configured one (BRAIN_EMBEDDER values)',
    )
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const ks = parseKs(flags.k);
      const tty = process.stderr.isTTY === true && !flags.json;
      let lastPhase = '';
      const { report, embedder } = await runtime.evaluate(globals(), {
        data: flags.data,
        ks,
        embedder: flags.embedder,
        onProgress: (p) => {
          if (tty)
            process.stderr.write(
              `\r${progressBar(p.phase, p.done, p.total)}${p.done === p.total ? '\n' : ''}`,
            );
          else if (p.phase !== lastPhase) io.err(`${p.phase}: ${p.total} to go`);
          lastPhase = p.phase;
        },
      });
      print(flags.json, { embedder, ...report }, () => formatEvalReport(report, `embedder ${embedder}`));
    });

  program
    .command('config')
    .description('inspect the configuration')
    .command('check')
    .description('print the effective config (secrets masked) and every problem; exit 1 on any')
    .option('--json', 'print JSON')
    .action((flags) => {
      const { text, ok } = runtime.checkConfig(globals(), Boolean(flags.json));
      io.out(text);
      state.code = ok ? EXIT.ok : EXIT.failed;
    });

  registerKeysCommands(program, { runtime, globals, print, io, state });
  registerTransferCommands(program, { runtime, globals, print, io });
  registerBackupCommands(program, { runtime, globals, print, io, state });
  registerJobsCommands(program, { runtime, globals, print, io, state });
  registerDbCommands(program, { runtime, globals, print, io, state });
  registerDoctorCommands(program, { runtime, globals, print, io, state });
  registerTierCommands(program, { withBrain, print });
  registerExecCommands(program, { runtime, globals, print, io, state });

  return program;
}

/**
 * Runs one `brain` command line (without `node` and the script path) and returns its exit code. Every
 * failure prints a one-line reason on stderr (JSON with --json) and never a stack trace.
 */
export async function runCli(argv: readonly string[], runtime: CliRuntime, io: CliIo): Promise<number> {
  const state = { code: EXIT.ok as number };
  const program = buildProgram(runtime, io, state);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return state.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version "errors" are commander's way of stopping after printing; they are successes.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
      if (error.code === 'commander.help' || error.code === 'commander.executeSubCommandAsync')
        return EXIT.ok;
      return EXIT.usage;
    }
    const brainError = toBrainError(error);
    if (argv.includes('--json')) {
      const { code, message, details } = brainError;
      io.err(JSON.stringify({ error: { code, message, details } }));
    } else {
      io.err(formatError(brainError));
    }
    // The CLI's stderr is the only log a one-off command has: an internal error's cause goes there (its
    // message only, never a stack trace), so "the log has the details" is true.
    if (brainError.code === 'INTERNAL' && brainError.cause !== undefined) {
      const cause = brainError.cause instanceof Error ? brainError.cause.message : String(brainError.cause);
      io.err(`cause: ${cause}`);
    }
    return exitCodeOf(brainError);
  }
}
