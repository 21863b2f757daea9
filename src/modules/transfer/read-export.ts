import type { z } from 'zod';
import {
  EXPORT_END,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type ExportHeader,
  type ExportRecord,
  endSchema,
  headerSchema,
  RECORD_KINDS,
  RECORD_SCHEMAS,
  type RecordKind,
  TRANSFER_LIMITS,
} from './export-format.js';
import { type Line, lineError, parseJsonLine, readLines } from './json-lines.js';

/** What reading a whole export found: its header, the records of each kind, the kinds skipped. */
export interface ExportSummary {
  header: ExportHeader;
  counts: Record<RecordKind, number>;
  /** Records of kinds this build does not know (a newer Brain's), by kind: skipped. */
  skipped: Record<string, number>;
}

function isRecordKind(kind: string): kind is RecordKind {
  return (RECORD_KINDS as readonly string[]).includes(kind);
}

/** A zod failure as a line error naming the first bad field. */
function failed(line: Line, kind: string, error: z.ZodError): never {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : kind;
  const message =
    issue?.code === 'unrecognized_keys'
      ? `unknown field(s) ${issue.keys.join(', ')} in a ${kind} record (this build reads export version ${EXPORT_VERSION})`
      : (issue?.message ?? 'is not valid');
  throw lineError(line.number, field, message);
}

function parseHeader(line: Line): ExportHeader {
  const value = parseJsonLine(line) as Record<string, unknown> | null;
  if (value === null || typeof value !== 'object' || value.kind !== EXPORT_FORMAT)
    throw lineError(
      line.number,
      'kind',
      `must be "${EXPORT_FORMAT}": the first line of a Brain export is its header (for another format give --format)`,
    );
  if (typeof value.version === 'number' && value.version > EXPORT_VERSION)
    throw lineError(
      line.number,
      'version',
      `this file is Brain export format version ${value.version}, newer than this build reads (${EXPORT_VERSION}): upgrade Brain to import it`,
    );
  const parsed = headerSchema.safeParse(value);
  if (!parsed.success) failed(line, 'header', parsed.error);
  return parsed.data;
}

/** The counts the end line states must be the counts read: otherwise the file was cut or edited. */
function checkEnd(line: Line, value: unknown, read: Record<string, number>): void {
  const parsed = endSchema.safeParse(value);
  if (!parsed.success) failed(line, 'end', parsed.error);
  const stated = parsed.data.counts;
  for (const kind of new Set([...Object.keys(stated), ...Object.keys(read)])) {
    const says = stated[kind] ?? 0;
    const got = read[kind] ?? 0;
    if (says !== got)
      throw lineError(
        line.number,
        `counts.${kind}`,
        `the end line states ${says} ${kind} records but the file holds ${got}: it was changed or cut; nothing was imported`,
      );
  }
}

/**
 * Reads a Brain export line by line, validating every line, and hands each chunk's records to
 * `onRecords` (in file order). Throws INVALID_INPUT naming the line and field of the first bad line,
 * a newer format version, or a file without its end line (cut short).
 */
export async function readExport(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  onRecords: (records: ExportRecord[]) => Promise<void> | void,
): Promise<ExportSummary> {
  let header: ExportHeader | null = null;
  let ended: number | null = null;
  let lastLine = 0;
  const counts = Object.fromEntries(RECORD_KINDS.map((k) => [k, 0])) as Record<RecordKind, number>;
  const skipped: Record<string, number> = {};
  for await (const lines of readLines(source, TRANSFER_LIMITS.lineBytes)) {
    const records: ExportRecord[] = [];
    for (const line of lines) {
      lastLine = line.number;
      if (line.text.trim() === '') continue;
      if (ended !== null)
        throw lineError(line.number, null, `comes after the end line (line ${ended}): the file was changed`);
      if (header === null) {
        header = parseHeader(line);
        continue;
      }
      const value = parseJsonLine(line);
      const kind = (value as { kind?: unknown } | null)?.kind;
      if (typeof kind !== 'string' || kind.length === 0)
        throw lineError(line.number, 'kind', 'must be a string naming the record kind (memory, session, …)');
      if (kind === EXPORT_END) {
        checkEnd(line, value, { ...counts, ...skipped });
        ended = line.number;
        continue;
      }
      if (!isRecordKind(kind)) {
        // A newer Brain's data (notes, graph, …): this build has nowhere to put it, and says so.
        skipped[kind] = (skipped[kind] ?? 0) + 1;
        continue;
      }
      const parsed = RECORD_SCHEMAS[kind].safeParse(value);
      if (!parsed.success) failed(line, kind, parsed.error);
      counts[kind]++;
      records.push({ kind, record: parsed.data } as ExportRecord);
    }
    if (records.length > 0) await onRecords(records);
  }
  if (header === null)
    throw lineError(1, null, 'the input is empty: a Brain export starts with its header line');
  if (ended === null)
    throw lineError(
      lastLine + 1,
      null,
      `the file ends without its end line ("kind":"${EXPORT_END}"): it was cut short (an interrupted export?); nothing was imported`,
    );
  return { header, counts, skipped };
}
