import { invalidInput } from '../../core/errors.js';
import { EXPORT_FORMAT } from './export-format.js';

/** The formats `brain import` reads. */
export const IMPORT_FORMATS = ['brain', 'mcp-memory', 'mem0'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

export function parseImportFormat(value: string): ImportFormat {
  if ((IMPORT_FORMATS as readonly string[]).includes(value)) return value as ImportFormat;
  throw invalidInput('format', `must be one of ${IMPORT_FORMATS.join(', ')}; got ${JSON.stringify(value)}`);
}

/**
 * The format of an input from its first bytes: a Brain export's header line, an MCP memory line
 * (`"type":"entity"` or `"relation"`), or a mem0 JSON list / `{"results": …}`. Throws INVALID_INPUT
 * asking for --format when it is none of them.
 */
export function detectFormat(head: string): ImportFormat {
  const text = head.replace(/^\uFEFF/, '').trimStart();
  if (text.startsWith('[')) return 'mem0';
  const firstLine = text.split('\n', 1)[0] ?? '';
  let first: unknown = null;
  try {
    first = JSON.parse(firstLine);
  } catch {
    // Not one JSON value on the first line: a pretty-printed document, or not JSON at all.
  }
  const o = first !== null && typeof first === 'object' ? (first as Record<string, unknown>) : null;
  if (o?.kind === EXPORT_FORMAT) return 'brain';
  if (o?.type === 'entity' || o?.type === 'relation') return 'mcp-memory';
  if (o !== null && Array.isArray(o.results)) return 'mem0';
  if (/^\{\s*"results"\s*:/.test(text)) return 'mem0';
  throw invalidInput(
    'format',
    `cannot tell the input's format: its first line is not a Brain export header ({"kind":"${EXPORT_FORMAT}",…}), an MCP memory entity or relation ({"type":"entity",…}), nor a mem0 export (a JSON list or {"results": […]}); give --format ${IMPORT_FORMATS.join('|')}`,
  );
}
