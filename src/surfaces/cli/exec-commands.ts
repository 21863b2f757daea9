import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { BrainError, invalidInput } from '../../core/errors.js';
import type { ExecutionView } from '../../modules/execution/execution-schemas.js';
import type { SurfaceContext } from '../brain-services.js';
import { formatExecution } from '../mcp/execution-tools.js';
import type { CliIo, GlobalOptions, OpenedBrain } from './cli-program.js';
import { scopeFor } from './cli-scope.js';

/** What `brain exec`, `brain executions` and `brain worker` need from the composition root. */
export interface ExecRuntime {
  /**
   * Opens a Brain for one execution command; with `workers`, this process runs execution workers too
   * (a waiting `brain exec` needs no server), else it only queues and reads.
   */
  openForExec(global: GlobalOptions, options: { workers: boolean }): Promise<OpenedBrain>;
  /** Runs execution workers in this process until SIGTERM or SIGINT, then drains them. */
  worker(global: GlobalOptions, options: { id?: string; concurrency: number }): Promise<void>;
}

export interface ExecKit {
  runtime: ExecRuntime;
  globals(): GlobalOptions;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
  io: CliIo;
  state: { code: number };
  /** Where `brain exec -` reads the code (process.stdin; tests pass a stream). */
  stdin?: NodeJS.ReadableStream;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--input NAME=PATH` (or just PATH: named as the file) → a file to pass in. */
function inputFile(spec: string): { name: string; content_base64: string } {
  const eq = spec.indexOf('=');
  const [name, file] = eq > 0 ? [spec.slice(0, eq), spec.slice(eq + 1)] : [path.basename(spec), spec];
  let content: Buffer;
  try {
    content = fs.readFileSync(file);
  } catch (error) {
    throw invalidInput('input', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return { name, content_base64: content.toString('base64') };
}

function whole(field: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()))
    throw invalidInput(field, `must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The shell's exit code for a run: 0 succeeded, the code's own (1-125) when it failed, 124 timed out. */
export function execExitCode(run: ExecutionView): number {
  switch (run.status) {
    case 'succeeded':
      return 0;
    case 'timed_out':
      return 124;
    case 'failed':
      return run.exit_code !== null && run.exit_code >= 1 && run.exit_code <= 125 ? run.exit_code : 1;
    case 'queued':
    case 'running':
      return 0;
    default:
      return 1;
  }
}

function writeOutputs(run: ExecutionView, dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return run.output_files.map((f) => {
    const target = path.join(dir, path.basename(f.name));
    fs.writeFileSync(target, Buffer.from(f.content_base64, 'base64'));
    return target;
  });
}

function listLine(e: ExecutionView): string {
  const exit = e.exit_code === null ? '' : ` exit ${e.exit_code}`;
  const took = e.wall_ms === null ? '' : ` ${e.wall_ms} ms`;
  return `${e.id}  ${e.status.padEnd(9)}${exit}${took}  ${e.code_bytes} B  ${e.created_at}`;
}

/** `brain exec FILE|-`, `brain executions list|show|cancel` and `brain worker`. */
export function registerExecCommands(program: Command, kit: ExecKit): void {
  const { runtime, globals, print, io, state } = kit;
  const withExec = async (workers: boolean, run: (ctx: SurfaceContext) => Promise<void>) => {
    const opened = await runtime.openForExec(globals(), { workers });
    try {
      await run(opened.ctx);
    } finally {
      await opened.close();
    }
  };

  program
    .command('exec')
    .description(
      'run a Python 3 file (or - for stdin) in the sandbox and print its output; exits with its exit code (124: timed out)',
    )
    .argument('<file>', 'the code: a file, or - to read stdin')
    .option('--input <name=path>', 'pass a file into the working directory (repeat for more)', collect)
    .option('--out <dir>', 'write the files the run left in its directory here')
    .option('--timeout <ms>', 'wall-clock limit (at most BRAIN_MAX_EXECUTION_TIME_MS)')
    .option('--no-wait', 'queue it and print its id (a server or `brain worker` runs it)')
    .option('--tenant <id>', 'run it as this tenant (default: BRAIN_DEFAULT_TENANT)')
    .option('--json', 'print JSON')
    .action(async (file: string, flags) => {
      let code: string;
      if (file === '-') code = await readAll(kit.stdin ?? process.stdin);
      else {
        try {
          code = fs.readFileSync(file, 'utf8');
        } catch (error) {
          throw invalidInput(
            'file',
            `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
          );
        }
      }
      const files = ((flags.input as string[] | undefined) ?? []).map(inputFile);
      const timeout = whole('timeout', flags.timeout);
      await withExec(flags.wait !== false, async (ctx) => {
        const run = await ctx.services.executions.execute(scopeFor(ctx, flags.tenant), {
          code,
          ...(files.length > 0 ? { files } : {}),
          ...(timeout !== undefined ? { timeout_ms: timeout } : {}),
          wait: flags.wait !== false,
        });
        const written = flags.out ? writeOutputs(run, flags.out) : [];
        if (flags.json) print(true, run, () => '');
        else if (flags.wait === false) io.out(`${run.id} queued`);
        else {
          if (run.stdout) io.out(run.stdout.replace(/\n$/, ''));
          if (run.stderr) io.err(run.stderr.replace(/\n$/, ''));
          if (run.result !== null) io.out(run.result);
          if (run.status !== 'succeeded')
            io.err(`${run.id} ${run.status}${run.error ? `: ${run.error}` : ''}`);
          for (const w of written) io.err(`wrote ${w}`);
        }
        state.code = execExitCode(run);
      });
    });

  const executions = program.command('executions').description('list, show and cancel executions');
  executions
    .command('list')
    .description("the tenant's executions, newest first")
    .option('--status <status>', 'only these: queued, running, succeeded, failed, timed_out, cancelled')
    .option('--limit <n>', 'at most this many (1-100, default 20)')
    .option('--tenant <id>', 'this tenant (default: BRAIN_DEFAULT_TENANT)')
    .option('--json', 'print JSON')
    .action(async (flags) =>
      withExec(false, async (ctx) => {
        // Passed on as given: the service names a bad limit as it does for MCP and HTTP.
        const rows = await ctx.services.executions.list(scopeFor(ctx, flags.tenant), {
          ...(flags.status !== undefined ? { status: flags.status } : {}),
          ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
        });
        print(flags.json, { executions: rows }, () =>
          rows.length === 0 ? 'no executions' : rows.map(listLine).join('\n'),
        );
      }),
    );
  executions
    .command('show')
    .description('one execution: its status, output and times')
    .argument('<id>', 'execution id (exe_…)')
    .option('--tenant <id>', 'the tenant it belongs to (default: BRAIN_DEFAULT_TENANT)')
    .option('--json', 'print JSON')
    .action(async (id: string, flags) =>
      withExec(false, async (ctx) => {
        const run = await ctx.services.executions.get(scopeFor(ctx, flags.tenant), { id });
        print(flags.json, run, () => formatExecution(run));
      }),
    );
  executions
    .command('cancel')
    .description('cancel a queued or running execution')
    .argument('<id>', 'execution id (exe_…)')
    .option('--tenant <id>', 'the tenant it belongs to (default: BRAIN_DEFAULT_TENANT)')
    .option('--json', 'print JSON')
    .action(async (id: string, flags) =>
      withExec(false, async (ctx) => {
        const run = await ctx.services.executions.cancel(scopeFor(ctx, flags.tenant), { id });
        print(flags.json, run, () =>
          run.status === 'running'
            ? `${run.id}: cancel asked; its worker stops it at its next heartbeat`
            : `${run.id} ${run.status}`,
        );
      }),
    );

  program
    .command('worker')
    .description(
      'run execution workers in this process (more machines or units: more workers on one store) until SIGTERM',
    )
    .option('--id <name>', "this worker's name in /health and metrics (systemd: the unit instance, %i)")
    .option('--concurrency <n>', 'runs at once in this process (1-64, default 1)')
    .action(async (flags) => {
      const concurrency = whole('concurrency', flags.concurrency) ?? 1;
      if (concurrency < 1 || concurrency > 64)
        throw invalidInput('concurrency', `must be from 1 to 64, got ${concurrency}`);
      if (flags.id !== undefined && !/^[A-Za-z0-9_.@-]{1,64}$/.test(flags.id))
        throw new BrainError('INVALID_INPUT', 'id: must be 1 to 64 letters, digits, . _ @ -', {
          issues: [{ field: 'id', message: 'must be 1 to 64 letters, digits, . _ @ -' }],
        });
      await runtime.worker(globals(), { ...(flags.id !== undefined ? { id: flags.id } : {}), concurrency });
    });
}
