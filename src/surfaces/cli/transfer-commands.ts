import type { Command } from 'commander';
import { BrainError, invalidInput } from '../../core/errors.js';
import {
  IMPORT_FORMATS,
  type ImportFormat,
  parseImportFormat,
} from '../../modules/transfer/detect-format.js';
import type { RecordKind } from '../../modules/transfer/export-format.js';
import type { CliIo, GlobalOptions } from './cli-program.js';
import { progressBar } from './eval-format.js';

/** How far an export or import is: the phase, and records (or for `check`, bytes) done of the total. */
export interface TransferProgress {
  phase: 'export' | 'check' | 'import';
  done: number;
  total: number;
}

/** Where an export writes its lines: resolves once the chunk is taken (backpressure). */
export interface TransferOutput {
  write(chunk: string): Promise<void>;
}

/** What `brain export` did (printed on stderr: stdout is the data). */
export interface ExportReport {
  counts: Record<RecordKind, number>;
  bytes: number;
  seconds: number;
  perSecond: number;
}

/** Records of one kind an import read, wrote, and left (their id was there, or a live duplicate). */
export interface KindImportCounts {
  read: number;
  imported: number;
  already: number;
  duplicates: number;
}

/** What `brain import` did. */
export interface ImportReport {
  format: ImportFormat;
  source: string;
  counts: Record<RecordKind, KindImportCounts>;
  /** Records of kinds (or MCP line types) this build does not import, by kind. */
  skipped: Record<string, number>;
  seconds: number;
  perSecond: number;
}

export interface ImportRequest {
  /** A file path, or `-` for stdin. */
  file: string;
  format?: ImportFormat | undefined;
  tenant?: string | undefined;
  project?: string | undefined;
}

/** What the export and import commands need from the composition root (src/app/run-transfer.ts). */
export interface TransferRuntime {
  exportData(
    global: GlobalOptions,
    filter: { tenant?: string | undefined; project?: string | undefined },
    output: TransferOutput,
    onProgress: (progress: TransferProgress) => void,
  ): Promise<ExportReport>;
  /** `stdin` is read when `request.file` is `-`. */
  importData(
    global: GlobalOptions,
    request: ImportRequest,
    stdin: NodeJS.ReadableStream,
    onProgress: (progress: TransferProgress) => void,
  ): Promise<ImportReport>;
}

export interface TransferCommandKit {
  runtime: TransferRuntime;
  globals(): GlobalOptions;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
  io: CliIo;
}

/** Plain progress lines (stderr is not a terminal) at most this often, besides each phase's first and last. */
const PLAIN_EVERY_MS = 2000;

/**
 * Progress on stderr: a bar redrawn in place on a terminal; otherwise a plain line when a phase starts,
 * every couple of seconds, and when it ends (a log file gets a few lines, not thousands).
 */
export function progressReporter(
  stderr: { isTTY?: boolean; write(text: string): unknown },
  now: () => number = Date.now,
): (p: TransferProgress) => void {
  let phase = '';
  let last = 0;
  let finished = false;
  return (p) => {
    const first = p.phase !== phase;
    const done = p.done >= p.total;
    if (first) {
      phase = p.phase;
      finished = false;
    } else if (finished) return;
    if (stderr.isTTY === true) {
      stderr.write(`\r${progressBar(p.phase, p.done, p.total)}${done ? '\n' : ''}`);
    } else if (first || done || now() - last >= PLAIN_EVERY_MS) {
      last = now();
      const unit = p.phase === 'check' ? 'bytes checked' : 'records';
      stderr.write(`${p.phase}: ${p.done}/${p.total} ${unit}\n`);
    }
    finished = done;
  };
}

const NOUNS: Record<RecordKind, [string, string]> = {
  memory: ['memory', 'memories'],
  memory_version: ['memory version', 'memory versions'],
  session: ['session', 'sessions'],
  api_key: ['API key', 'API keys'],
  audit_event: ['audit event', 'audit events'],
};

function counted(kind: RecordKind, n: number): string {
  return `${n} ${NOUNS[kind][n === 1 ? 0 : 1]}`;
}

export function formatExport(r: ExportReport): string {
  const kinds = (Object.keys(r.counts) as RecordKind[]).map((k) => counted(k, r.counts[k]));
  return `exported ${kinds.join(', ')} (${(r.bytes / 1024 / 1024).toFixed(1)} MiB) in ${r.seconds.toFixed(1)} s (${Math.round(r.perSecond)} records/s); API keys without their secrets`;
}

export function formatImport(r: ImportReport): string {
  const lines = [`imported from ${r.source} (${r.format} format) in ${r.seconds.toFixed(1)} s:`];
  for (const kind of Object.keys(r.counts) as RecordKind[]) {
    const c = r.counts[kind];
    if (c.read === 0) continue;
    const left = [
      c.already > 0 ? `${c.already} already there` : '',
      c.duplicates > 0 ? `${c.duplicates} duplicates of a live memory's key or content` : '',
    ].filter((s) => s.length > 0);
    lines.push(
      `  ${counted(kind, c.imported)} of ${c.read}${left.length > 0 ? ` (${left.join(', ')})` : ''}`,
    );
  }
  if (r.counts.api_key.imported > 0)
    lines.push('  API keys come without their secrets: they are kept revoked (create new keys to connect)');
  for (const [kind, n] of Object.entries(r.skipped))
    lines.push(`  skipped ${n} records of kind "${kind}" that this build does not import`);
  if (lines.length === 1) lines.push('  nothing to import');
  return lines.join('\n');
}

/** `brain export` and `brain import`. */
export function registerTransferCommands(program: Command, kit: TransferCommandKit): void {
  const { runtime, globals, print, io } = kit;
  program
    .command('export')
    .description(
      'write everything the store holds as JSON lines on stdout (memories with vectors, sessions, API keys without secrets, audit events); progress on stderr',
    )
    .option('--tenant <id>', 'only this tenant')
    .option(
      '--project <name>',
      'only the memories and sessions of this project (then no keys or audit events)',
    )
    .action(async (flags) => {
      if (process.stdout.isTTY === true)
        throw invalidInput(
          'stdout',
          'is a terminal: redirect the export to a file (brain export > brain.jsonl)',
        );
      const report = await runtime.exportData(
        globals(),
        { tenant: flags.tenant, project: flags.project },
        stdoutOutput(process.stdout),
        progressReporter(process.stderr),
      );
      io.err(formatExport(report));
    });

  program
    .command('import')
    .description(
      'import a Brain export, an MCP memory server memory.jsonl, or a mem0 export; ids are kept, so importing twice changes nothing',
    )
    .argument('<file>', 'the file to read, or - for stdin')
    .option('--format <format>', `${IMPORT_FORMATS.join(', ')} (default: detected from the first line)`)
    .option(
      '--tenant <id>',
      'mcp-memory and mem0: import into this tenant (default: mem0 user ids, else the default)',
    )
    .option('--project <name>', 'mcp-memory and mem0: import into this project')
    .option('--json', 'print JSON')
    .action(async (file: string, flags) => {
      const report = await runtime.importData(
        globals(),
        {
          file,
          format: flags.format === undefined ? undefined : parseImportFormat(flags.format),
          tenant: flags.tenant,
          project: flags.project,
        },
        process.stdin,
        progressReporter(process.stderr),
      );
      print(flags.json, report, () => formatImport(report));
    });
}

/**
 * stdout as an export's output: a write waits for 'drain' when the pipe is full, so an export to a slow
 * reader holds a page in memory, not the store. A reader that goes away (`| head`) ends the export.
 */
export function stdoutOutput(stream: NodeJS.WritableStream): TransferOutput {
  let failure: BrainError | null = null;
  const closed = (error: Error) =>
    new BrainError(
      'UNAVAILABLE',
      `stdout was closed before the export finished (${error.message}): the export stopped`,
    );
  stream.on('error', (error: Error) => {
    failure = closed(error);
  });
  return {
    write(chunk) {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        const onError = (error: Error) => reject(closed(error));
        stream.once('error', onError);
        const written = stream.write(chunk, () => undefined);
        const done = () => {
          stream.off('error', onError);
          resolve();
        };
        if (written) done();
        else stream.once('drain', done);
      });
    },
  };
}
