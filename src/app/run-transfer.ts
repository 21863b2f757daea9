import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BrainConfig } from '../config/config-schema.js';
import { BrainError, invalidInput } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { projectSchema } from '../modules/memory/memory-schemas.js';
import { detectFormat, type ImportFormat } from '../modules/transfer/detect-format.js';
import {
  apiKeyLine,
  auditLine,
  endLine,
  headerLine,
  memoryLine,
  RECORD_KINDS,
  type RecordKind,
  sessionLine,
  tenantIdSchema,
  versionLine,
} from '../modules/transfer/export-format.js';
import type { ImportTarget } from '../modules/transfer/imported-memory.js';
import { readMcpMemory } from '../modules/transfer/mcp-memory-format.js';
import { MEM0_MAX_BYTES, parseMem0 } from '../modules/transfer/mem0-format.js';
import { readExport } from '../modules/transfer/read-export.js';
import { createStorage } from '../storage/create-storage.js';
import type {
  Storage,
  StoreCopy,
  StoredApiKey,
  StoredAuditEvent,
  StoredMemory,
  StoredSession,
  StoredVersion,
  TransferFilter,
  VersionKey,
} from '../storage/storage.js';
import type { GlobalOptions } from '../surfaces/cli/cli-program.js';
import type {
  ExportReport,
  ImportReport,
  ImportRequest,
  TransferOutput,
  TransferProgress,
  TransferRuntime,
} from '../surfaces/cli/transfer-commands.js';
import { brainVersion } from './build-brain.js';
import { cliPrincipal } from './run-keys.js';
import { ImportWriter, interrupted, storedFromImported } from './transfer-writer.js';

/** Rows read from the store per page of an export. */
const EXPORT_PAGE = 1000;

type Progress = (p: TransferProgress) => void;
type SessionKey = { tenant_id: string; id: string };

function checkedFilter(tenant: string | undefined, project: string | undefined): TransferFilter {
  if (tenant !== undefined) {
    const t = tenantIdSchema.safeParse(tenant);
    if (!t.success) throw invalidInput('tenant', t.error.issues[0]?.message ?? 'is not a tenant id');
  }
  let p = project;
  if (project !== undefined) {
    const parsed = projectSchema.safeParse(project);
    if (!parsed.success) throw invalidInput('project', parsed.error.issues[0]?.message ?? 'is not a project');
    p = parsed.data;
  }
  return { tenantId: tenant, project: p };
}

/** The configured store, migrated (when BRAIN_MIGRATE_ON_START) or refused when its schema is old. */
async function openStore(config: BrainConfig, logger: Logger, migrate: boolean): Promise<Storage> {
  const storage = await createStorage(config, { logger });
  try {
    if (migrate) await storage.migrate();
    else {
      const schema = await storage.schema();
      if (schema.current < schema.latest)
        throw new BrainError(
          'STORAGE_ERROR',
          `database ${storage.location} is at schema version ${schema.current} but this build needs ${schema.latest}: run \`brain migrate\``,
        );
    }
    return storage;
  } catch (error) {
    await storage.close();
    throw error;
  }
}

/** Pages of one kind's rows in key order, until a short page. */
async function* paged<T, K>(
  read: (after: K | null) => Promise<T[]>,
  keyOf: (row: T) => K,
): AsyncGenerator<T[]> {
  let after: K | null = null;
  for (;;) {
    const page = await read(after);
    if (page.length > 0) yield page;
    if (page.length < EXPORT_PAGE) return;
    after = keyOf(page.at(-1) as T);
  }
}

/**
 * `brain export`: the header line, then every memory (with its vector), session, API key (never its
 * hash) and audit event of the store (or of a tenant; with a project, its memories and sessions
 * only), page by page in id order, each page written before the next is read, then the end line with
 * the counts written. Memory stays flat whatever the store's size.
 */
export async function exportData(
  config: BrainConfig,
  options: {
    tenant?: string | undefined;
    project?: string | undefined;
    output: TransferOutput;
    logger: Logger;
    onProgress?: Progress;
  },
): Promise<ExportReport> {
  const filter = checkedFilter(options.tenant, options.project);
  const started = performance.now();
  const storage = await openStore(config, options.logger, false);
  try {
    const copy = storage.copy();
    const totals = await copy.counts(filter);
    const withKeys = filter.project === undefined;
    const total = totals.memories + totals.sessions + (withKeys ? totals.apiKeys + totals.auditEvents : 0);
    const counts = Object.fromEntries(RECORD_KINDS.map((k) => [k, 0])) as Record<RecordKind, number>;
    let bytes = 0;
    let done = 0;
    const write = async (lines: string[]) => {
      const chunk = `${lines.join('\n')}\n`;
      bytes += Buffer.byteLength(chunk);
      await options.output.write(chunk);
    };
    const page = async <T>(kind: RecordKind, rows: T[], line: (row: T) => string) => {
      await write(rows.map(line));
      counts[kind] += rows.length;
      done += rows.length;
      options.onProgress?.({ phase: 'export', done, total: Math.max(total, done) });
    };
    await write([
      headerLine({
        schema: (await storage.schema()).current,
        engine: storage.engine,
        brain: brainVersion(),
        exported_at: new Date().toISOString(),
        filter: { tenant: filter.tenantId ?? null, project: filter.project ?? null },
      }),
    ]);
    options.onProgress?.({ phase: 'export', done: 0, total });
    for await (const rows of paged<StoredMemory, string>(
      (a) => copy.exportMemories(a, EXPORT_PAGE, filter),
      (m) => m.id,
    ))
      await page('memory', rows, memoryLine);
    for await (const rows of paged<StoredVersion, VersionKey>(
      (a) => copy.exportVersions(a, EXPORT_PAGE, filter),
      (v) => ({ tenant_id: v.tenant_id, memory_id: v.memory_id, version: v.version }),
    ))
      await page('memory_version', rows, versionLine);
    for await (const rows of paged<StoredSession, SessionKey>(
      (a) => copy.exportSessions(a, EXPORT_PAGE, filter),
      (s) => ({ tenant_id: s.tenant_id, id: s.id }),
    ))
      await page('session', rows, sessionLine);
    if (withKeys) {
      for await (const rows of paged<StoredApiKey, string>(
        (a) => copy.exportApiKeys(a, EXPORT_PAGE, filter),
        (k) => k.id,
      ))
        await page('api_key', rows, apiKeyLine);
      for await (const rows of paged<StoredAuditEvent, string>(
        (a) => copy.exportAuditEvents(a, EXPORT_PAGE, filter),
        (e) => e.id,
      ))
        await page('audit_event', rows, auditLine);
    }
    await write([endLine(counts)]);
    options.onProgress?.({ phase: 'export', done, total: done });
    const seconds = (performance.now() - started) / 1000;
    return { counts, bytes, seconds, perSecond: done / Math.max(seconds, 1e-3) };
  } finally {
    await storage.close();
  }
}

/** The input of an import as a file: stdin is first copied to a temporary file beside the database. */
async function inputFile(
  request: ImportRequest,
  stdin: NodeJS.ReadableStream,
  home: string,
): Promise<{ file: string; label: string; remove: () => void }> {
  if (request.file !== '-') {
    const file = path.resolve(request.file);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      throw invalidInput('file', `no such file: ${file}`);
    }
    if (!stat.isFile()) throw invalidInput('file', `is not a file: ${file}`);
    return { file, label: file, remove: () => undefined };
  }
  // Read twice (checked whole, then written) like a file, so a bad line anywhere still writes nothing.
  fs.mkdirSync(home, { recursive: true });
  const file = path.join(home, `.import-${process.pid}-${Date.now()}.jsonl`);
  const remove = () => fs.rmSync(file, { force: true });
  try {
    await pipeline(stdin, fs.createWriteStream(file, { mode: 0o600 }));
  } catch (error) {
    remove();
    throw new BrainError(
      'STORAGE_ERROR',
      `could not copy stdin to ${file}: ${(error as Error).message}`,
      {},
      {
        cause: error,
      },
    );
  }
  return { file, label: 'stdin', remove };
}

function head(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const n = fs.readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** The file's chunks, reporting bytes read to `onBytes`. */
async function* chunks(file: string, onBytes?: (bytes: number) => void): AsyncGenerator<Buffer> {
  let read = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 256 * 1024 })) {
    read += (chunk as Buffer).length;
    onBytes?.(read);
    yield chunk as Buffer;
  }
}

/** What the check found, ready for the write: the record count, and the work that writes them. */
interface Checked {
  records: number;
  skipped: Record<string, number>;
  write(writer: ImportWriter): Promise<void>;
}

async function check(
  format: ImportFormat,
  file: string,
  target: ImportTarget,
  onBytes: (bytes: number) => void,
): Promise<Checked> {
  if (format === 'brain') {
    const summary = await readExport(chunks(file, onBytes), () => undefined);
    return {
      records: RECORD_KINDS.reduce((n, k) => n + summary.counts[k], 0),
      skipped: summary.skipped,
      write: async (writer) => {
        await readExport(chunks(file), (records) => writer.add(records));
      },
    };
  }
  if (format === 'mcp-memory') {
    let records = 0;
    const summary = await readMcpMemory(chunks(file, onBytes), target, (m) => {
      records += m.length;
    });
    return {
      records,
      skipped: summary.skipped,
      write: async (writer) => {
        await readMcpMemory(chunks(file), target, (m) => writer.addMemories(m.map(storedFromImported)));
      },
    };
  }
  const size = fs.statSync(file).size;
  if (size > MEM0_MAX_BYTES)
    throw invalidInput(
      'file',
      `is ${size} bytes; a mem0 export is read whole, and at most ${MEM0_MAX_BYTES} bytes (256 MiB) are: split it into several files`,
    );
  const memories = parseMem0(fs.readFileSync(file, 'utf8'), target).map(storedFromImported);
  onBytes(size);
  return { records: memories.length, skipped: {}, write: (writer) => writer.addMemories(memories) };
}

/**
 * `brain import`: checks the whole input first (every line parsed and validated, the end line of a
 * Brain export there), so a bad line names its line number and field and nothing is written; then
 * writes it in batches, one transaction each, keeping ids: a record whose id is there is left as it
 * is, so importing twice changes nothing. An import that wrote anything is recorded in the audit log.
 */
export async function importData(
  config: BrainConfig,
  request: ImportRequest,
  options: { stdin: NodeJS.ReadableStream; logger: Logger; onProgress?: Progress },
): Promise<ImportReport> {
  const filter = checkedFilter(request.tenant, request.project);
  const started = performance.now();
  const input = await inputFile(request, options.stdin, config.home);
  try {
    const format = request.format ?? detectFormat(head(input.file));
    if (format === 'brain' && (request.tenant !== undefined || request.project !== undefined))
      throw invalidInput(
        request.tenant !== undefined ? 'tenant' : 'project',
        "applies to --format mcp-memory and mem0 only: a Brain export keeps each record's tenant and project (export with --tenant or --project to move a part of a store)",
      );
    const now = new Date().toISOString();
    const target: ImportTarget = {
      tenant: filter.tenantId,
      defaultTenant: config.defaultTenant,
      project: filter.project ?? null,
      now,
    };
    const before = fs.statSync(input.file);
    options.onProgress?.({ phase: 'check', done: 0, total: before.size });
    const checked = await check(format, input.file, target, (bytes) =>
      options.onProgress?.({ phase: 'check', done: bytes, total: before.size }),
    );
    options.onProgress?.({ phase: 'check', done: before.size, total: before.size });
    const storage = await openStore(config, options.logger, config.migrateOnStart);
    try {
      const after = fs.statSync(input.file);
      if (after.size !== before.size || after.mtimeMs !== before.mtimeMs)
        throw invalidInput(
          'file',
          'changed while it was being checked: nothing was imported; run the import again',
        );
      let done = 0;
      const total = checked.records;
      options.onProgress?.({ phase: 'import', done, total });
      const writer = new ImportWriter(storage.copy(), now, (n) => {
        done += n;
        options.onProgress?.({ phase: 'import', done: Math.min(done, total), total });
      });
      try {
        await checked.write(writer);
        await writer.finish();
      } catch (error) {
        throw interrupted(error, writer.written);
      }
      options.onProgress?.({ phase: 'import', done: total, total });
      const seconds = (performance.now() - started) / 1000;
      const report: ImportReport = {
        format,
        source: input.label,
        counts: writer.counts,
        skipped: checked.skipped,
        seconds,
        perSecond: total / Math.max(seconds, 1e-3),
      };
      if (writer.written > 0) await recordImport(storage.copy(), config, report, now);
      return report;
    } finally {
      await storage.close();
    }
  } finally {
    input.remove();
  }
}

/** `admin.import` in the audit log: an import can add keys and audit events, so it leaves its own. */
async function recordImport(copy: StoreCopy, config: BrainConfig, report: ImportReport, at: string) {
  const imported = Object.fromEntries(RECORD_KINDS.map((k) => [k, report.counts[k].imported]));
  await copy.importAuditEvents([
    {
      id: newId('aud'),
      at,
      principal: cliPrincipal(),
      tenantId: config.defaultTenant,
      action: 'admin.import',
      target: report.source === 'stdin' ? 'stdin' : path.basename(report.source),
      outcome: 'ok',
      details: { format: report.format, imported, skipped: report.skipped },
    },
  ]);
}

/** What a transfer command starts with: the effective config and a logger on stderr. */
export type TransferStart = (global: GlobalOptions) => { config: BrainConfig; logger: Logger };

/** `brain export` and `brain import` on the configured store. */
export function transferRuntime(start: TransferStart): TransferRuntime {
  return {
    exportData(global, filter, output, onProgress) {
      const { config, logger } = start(global);
      return exportData(config, { ...filter, output, logger, onProgress });
    },
    importData(global, request, stdin, onProgress) {
      const { config, logger } = start(global);
      return importData(config, request, { stdin, logger, onProgress });
    },
  };
}
