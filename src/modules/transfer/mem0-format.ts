import { z } from 'zod';
import { invalidInput } from '../../core/errors.js';
import { isIsoDateTime } from '../memory/memory-schemas.js';
import { tenantIdSchema } from './export-format.js';
import {
  checkedFields,
  derivedMemoryId,
  type ImportedMemory,
  type ImportTarget,
  tagOf,
} from './imported-memory.js';

/**
 * A mem0 export: what `Memory.get_all()` (the open-source library: `{"results": [...]}`) or the
 * platform's get-all endpoint (a JSON list) returns, saved to a file. Each memory has `id` (a UUID),
 * `memory` (the text), and optionally `user_id`, `agent_id`, `app_id`, `run_id`, `hash`, `metadata`,
 * `categories`, `created_at`, `updated_at`, `expiration_date`, `immutable`; other fields are ignored.
 *
 * Mapping: `user_id` is mem0's isolation boundary, as a tenant is Brain's, so it becomes the tenant
 * (it must then be a tenant id: 1-64 of A-Z a-z 0-9 _ -); `--tenant` puts every memory in one tenant
 * instead. Either way the user is kept as the tag `user:<id>`; `categories` become tags beside `mem0`;
 * the memory's own metadata is kept with mem0's ids under `metadata.mem0`; the times are kept.
 */
export const MEM0_SOURCE = 'mem0';

/** A mem0 export is one JSON document, read whole: this bounds the memory that takes. */
export const MEM0_MAX_BYTES = 256 * 1024 * 1024;

const optionalText = z.string({ error: 'must be a string' }).nullish();

const mem0ItemSchema = z.object(
  {
    id: z.string({ error: 'must be a string' }).min(1, { message: 'must not be empty' }),
    memory: z.string({ error: 'must be a string' }),
    user_id: optionalText,
    agent_id: optionalText,
    app_id: optionalText,
    run_id: optionalText,
    hash: optionalText,
    metadata: z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).nullish(),
    categories: z
      .array(z.string({ error: 'must be a string' }), { error: 'must be a list of strings' })
      .nullish(),
    created_at: optionalText,
    updated_at: optionalText,
    expiration_date: optionalText,
    immutable: z.boolean({ error: 'must be true or false' }).nullish(),
  },
  { error: 'must be a JSON object (a mem0 memory)' },
);
type Mem0Item = z.infer<typeof mem0ItemSchema>;

/** An ISO time (or a date, for expiry) as UTC ISO text, undefined when absent, or a message. */
function timeOf(value: string | null | undefined, dateOnly: boolean): string | undefined | { error: string } {
  if (value === null || value === undefined || value === '') return undefined;
  const text = dateOnly && /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  if (!isIsoDateTime(text))
    return {
      error: `must be an ISO 8601 time, e.g. 2024-07-20T01:12:43.253447-07:00; got ${JSON.stringify(value)}`,
    };
  return new Date(text).toISOString();
}

function memoryOf(item: Mem0Item, at: string, target: ImportTarget): ImportedMemory {
  const fail = (field: string, message: string): never => {
    throw invalidInput(`${at}.${field}`, message);
  };
  let tenant = target.tenant;
  if (tenant === undefined && item.user_id) {
    const parsed = tenantIdSchema.safeParse(item.user_id);
    if (!parsed.success)
      fail(
        'user_id',
        `becomes the tenant, and ${parsed.error.issues[0]?.message ?? 'is not a tenant id'}; got ${JSON.stringify(item.user_id)} (give --tenant to import every memory into one tenant, the user kept as a tag)`,
      );
    tenant = item.user_id;
  }
  tenant ??= target.defaultTenant;
  const times: Record<'created_at' | 'updated_at' | 'expiration_date', string | undefined> = {
    created_at: undefined,
    updated_at: undefined,
    expiration_date: undefined,
  };
  for (const field of ['created_at', 'updated_at', 'expiration_date'] as const) {
    const t = timeOf(item[field], field === 'expiration_date');
    if (typeof t === 'object') fail(field, t.error);
    else times[field] = t;
  }
  const ids = Object.fromEntries(
    (['id', 'user_id', 'agent_id', 'app_id', 'run_id', 'hash', 'immutable'] as const)
      .filter((k) => item[k] !== null && item[k] !== undefined)
      .map((k) => [k, item[k]]),
  );
  const tags = [
    MEM0_SOURCE,
    ...(item.user_id ? [tagOf('user', item.user_id)] : []),
    ...(item.categories ?? []),
  ].filter((t): t is string => t !== null);
  const fields = checkedFields(
    { content: item.memory, tags, metadata: { ...(item.metadata ?? {}), mem0: ids } },
    fail,
    (f) => (f === 'content' ? 'memory' : f === 'tags' ? 'categories' : f),
  );
  const created = times.created_at ?? target.now;
  return {
    id: derivedMemoryId(
      [MEM0_SOURCE, tenant, target.project ?? '', item.id],
      times.created_at ? Date.parse(created) : null,
    ),
    tenant_id: tenant,
    project: target.project,
    type: 'fact',
    ...fields,
    created_at: created,
    updated_at: times.updated_at ?? created,
    expires_at: times.expiration_date ?? null,
  };
}

/**
 * The memories of a mem0 export's text. Throws INVALID_INPUT naming the record and field (e.g.
 * `results[3].memory: must not be empty`) for the first bad one, or when the text is not a mem0 export.
 */
export function parseMem0(text: string, target: ImportTarget): ImportedMemory[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw invalidInput(
      'file',
      `is not JSON (${(error as Error).message}); a mem0 export is one JSON document`,
    );
  }
  const results = (doc as { results?: unknown } | null)?.results;
  const list = Array.isArray(doc) ? doc : Array.isArray(results) ? results : null;
  if (list === null)
    throw invalidInput(
      'file',
      'must be a JSON list of mem0 memories or {"results": [...]} (what get_all returns)',
    );
  const prefix = Array.isArray(doc) ? '' : 'results';
  return list.map((value, i) => {
    const at = `${prefix}[${i}]`;
    const parsed = mem0ItemSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue?.path.map(String).join('.');
      throw invalidInput(path ? `${at}.${path}` : at, issue?.message ?? 'is not a mem0 memory');
    }
    return memoryOf(parsed.data, at, target);
  });
}
