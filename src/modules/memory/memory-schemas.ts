import { z } from 'zod';
import { inspectJson, isWellFormedText, MALFORMED_TEXT_MESSAGE } from '../../core/validation.js';
import { FILTER_FIELDS, filterConditions } from './memory-filter.js';

/** Limits of the memory module. They live here so that every surface states the same numbers. */
export const MEMORY_LIMITS = {
  contentBytes: 64 * 1024,
  keyChars: 256,
  tags: 64,
  tagChars: 64,
  metadataBytes: 16 * 1024,
  nameChars: 128,
  queryChars: 4096,
  kMax: 100,
  listLimitMax: 200,
  typesMax: 16,
  batchMax: 1000,
  ttlSecondsMax: 10 * 365 * 24 * 3600,
  /** Levels of nested objects and arrays in metadata, the metadata object itself included. */
  metadataDepth: 16,
  /**
   * Most bytes of memory text (content + metadata as JSON) one list or recall answer carries. A page
   * that would pass it ends early (next_offset continues it), so no answer grows to many megabytes.
   */
  responseBytes: 1024 * 1024,
  /** Most ids a forget by filter lists; `forgotten` still counts them all. */
  forgetIdsShown: 100,
  offsetMax: 1_000_000_000,
} as const;

export const BUILTIN_MEMORY_TYPES = [
  'fact',
  'preference',
  'event',
  'instruction',
  'user_preferences',
  'system_critical',
  'note',
  'decision',
] as const;

const byteLength = (s: string) => Buffer.byteLength(s, 'utf8');

/** A string that survives storage unchanged: no lone surrogates (see isWellFormedText). */
const text = () =>
  z
    .string({ error: 'must be a string' })
    .refine(isWellFormedText, { message: MALFORMED_TEXT_MESSAGE, abort: true });

/**
 * Text a caller writes (a memory, an episode, code): well-formed, not blank, and at most `maxBytes` of
 * UTF-8, the limit named in bytes and KiB. `error` is what a value that is not a string is told.
 */
export function boundedText(maxBytes: number, error = 'must be a string') {
  return z
    .string({ error })
    .refine(isWellFormedText, { message: MALFORMED_TEXT_MESSAGE, abort: true })
    .refine((s) => s.trim().length > 0, { message: 'must not be empty', abort: true })
    .refine((s) => byteLength(s) <= maxBytes, {
      message: `must be at most ${maxBytes} bytes (${maxBytes / 1024} KiB) of UTF-8`,
    });
}

export const contentSchema = boundedText(MEMORY_LIMITS.contentBytes);

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A name (project, session, key, tag) without control characters. */
export function nameSchema(max: number) {
  // Emptiness is a refinement rather than .min(1): the JSON Schema then carries only maxLength, and
  // `minLength: 1` would not say that blank (all-space) names are refused either.
  return text()
    .trim()
    .refine((s) => s.length > 0, { message: 'must not be empty', abort: true })
    .max(max, { message: `must be at most ${max} characters` })
    .refine((s) => !CONTROL.test(s), { message: 'must not contain control characters' });
}

export const projectSchema = nameSchema(MEMORY_LIMITS.nameChars);
export const sessionSchema = nameSchema(MEMORY_LIMITS.nameChars);
export const keySchema = nameSchema(MEMORY_LIMITS.keyChars);

export const typeSchema = z.string({ error: 'must be a string' }).regex(/^[a-z][a-z0-9_]{0,31}$/, {
  message: `must be 1-32 lowercase letters, digits or _ starting with a letter (e.g. ${BUILTIN_MEMORY_TYPES.join(', ')})`,
});

export const tagSchema = nameSchema(MEMORY_LIMITS.tagChars);

export const tagsSchema = z
  .array(tagSchema, { error: 'must be an array of strings' })
  .max(MEMORY_LIMITS.tags, { message: `must have at most ${MEMORY_LIMITS.tags} tags` })
  .transform((tags) => [...new Set(tags)]);

/**
 * Metadata is checked as it arrives, before it is copied: a copy would silently drop an own `__proto__`
 * key, and measuring a 10,000-level value by serialising it would overflow the stack.
 */
export const metadataSchema = z
  .preprocess(
    (value, ctx) => {
      const issue = inspectJson(value, { maxDepth: MEMORY_LIMITS.metadataDepth });
      if (issue) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path, input: value });
      return value;
    },
    z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }),
  )
  .refine((m) => byteLength(JSON.stringify(m)) <= MEMORY_LIMITS.metadataBytes, {
    message: `must be at most ${MEMORY_LIMITS.metadataBytes} bytes (16 KiB) as JSON`,
  });

export const importanceSchema = z
  .number({ error: 'must be a number' })
  .min(0, { message: 'must be between 0 and 1' })
  .max(1, { message: 'must be between 0 and 1' });

const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/i;

/** An ISO 8601 date-time with an offset whose every field is in range (no 2026-02-30, no 24:00). */
export function isIsoDateTime(value: string): boolean {
  const m = ISO_DATE_TIME.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second = 0, offH = 0, offM = 0] = m
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part))) as number[];
  const daysInMonth = new Date(Date.UTC(year as number, month as number, 0)).getUTCDate();
  return (
    (month as number) >= 1 &&
    (month as number) <= 12 &&
    (day as number) >= 1 &&
    (day as number) <= daysInMonth &&
    (hour as number) <= 23 &&
    (minute as number) <= 59 &&
    second <= 59 &&
    offH <= 23 &&
    offM <= 59
  );
}

// Checked by a refinement, not zod's ISO regex: that regex is 400 characters of JSON Schema `pattern`,
// repeated in every date argument of every tool a model reads; `format: date-time` says the same.
export const isoDateSchema = z
  .string({ error: 'must be a string' })
  .refine(isIsoDateTime, { message: 'must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z' })
  .meta({ format: 'date-time' });

export const ttlSecondsSchema = z
  .number({ error: 'must be a number' })
  .int({ message: 'must be a whole number of seconds' })
  .min(1, { message: `must be from 1 to ${MEMORY_LIMITS.ttlSecondsMax} seconds` })
  .max(MEMORY_LIMITS.ttlSecondsMax, { message: `must be from 1 to ${MEMORY_LIMITS.ttlSecondsMax} seconds` });

export const memoryIdSchema = z
  .string({ error: 'must be a string' })
  .regex(/^mem_[0-9a-z]{26}$/, { message: 'must be a memory id like mem_01hx… (mem_ and 26 characters)' });

// Argument descriptions are what a model reads in every conversation: each says what the argument is
// for in a few words; limits and defaults a schema states (minimum, maximum) are not repeated here.

export const SUPERSEDES_TEXT = 'Replaces this memory id.';

export const rememberShape = {
  content: contentSchema.describe('The statement to keep.'),
  key: keySchema.optional().describe('Name to update it by.'),
  type: typeSchema.optional().describe('fact (default), preference, event, …'),
  tags: tagsSchema.optional().describe('Labels.'),
  metadata: metadataSchema.optional().describe('Any JSON object.'),
  importance: importanceSchema.optional().describe('0..1, default 0.5.'),
  project: projectSchema.optional().describe('Project; none = global.'),
  session: sessionSchema.optional().describe('session_id from init.'),
  ttl_seconds: ttlSecondsSchema.optional().describe('Forget after N s.'),
  expires_at: isoDateSchema.optional().describe('Forget at this time.'),
  valid_from: isoDateSchema.optional().describe('True from.'),
  valid_to: isoDateSchema.optional().describe('True until.'),
  dedupe: z.boolean({ error: 'must be true or false' }).optional().describe('false: keep near-duplicates.'),
  supersedes: memoryIdSchema.optional().describe(SUPERSEDES_TEXT),
};

/** valid_to must come after valid_from: a fact true for no time at all is a mistake, not a fact. */
function validityInOrder(v: { valid_from?: string | null; valid_to?: string | null }): boolean {
  if (typeof v.valid_from !== 'string' || typeof v.valid_to !== 'string') return true;
  return Date.parse(v.valid_to) > Date.parse(v.valid_from);
}
const VALIDITY_ORDER = { message: 'must be after valid_from', path: ['valid_to'] };

export const rememberSchema = z
  .object(rememberShape)
  .strict()
  .refine((v) => !(v.ttl_seconds !== undefined && v.expires_at !== undefined), {
    message: 'give ttl_seconds or expires_at, not both',
    path: ['ttl_seconds'],
  })
  .refine(validityInOrder, VALIDITY_ORDER);
export type RememberInput = z.infer<typeof rememberSchema>;

export const rememberManySchema = z
  .array(rememberSchema)
  .min(1, { message: 'must hold at least one memory' })
  .max(MEMORY_LIMITS.batchMax, { message: `must hold at most ${MEMORY_LIMITS.batchMax} memories` });

const filterShape = {
  project: projectSchema.optional().describe('This project.'),
  session: sessionSchema.optional().describe('This session.'),
  types: z
    .array(typeSchema, { error: 'must be an array of types' })
    .max(MEMORY_LIMITS.typesMax, { message: `must have at most ${MEMORY_LIMITS.typesMax} types` })
    .optional()
    .describe('Any of these types.'),
  tags: tagsSchema.optional().describe('All of these tags.'),
  since: isoDateSchema.optional().describe('Created since.'),
  until: isoDateSchema.optional().describe('Created before.'),
};

export const recallShape = {
  query: text()
    .refine((s) => s.trim().length > 0, { message: 'must not be empty' })
    .refine((s) => s.length <= MEMORY_LIMITS.queryChars, {
      message: `must be at most ${MEMORY_LIMITS.queryChars} characters`,
    })
    .describe('Words or a question.'),
  k: z
    .number({ error: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(1, { message: `must be from 1 to ${MEMORY_LIMITS.kMax}` })
    .max(MEMORY_LIMITS.kMax, { message: `must be from 1 to ${MEMORY_LIMITS.kMax}` })
    .optional()
    .describe('Hits, default 10.'),
  min_score: z
    .number({ error: 'must be a number' })
    .min(0, { message: 'must be from 0 to 1' })
    .max(1, { message: 'must be from 0 to 1' })
    .optional()
    .describe('Drop hits below this score (0..1).'),
  ...filterShape,
  in_session: sessionSchema.optional().describe('Your session: its episodes, no filter.'),
  include_cold: z
    .boolean({ error: 'must be true or false' })
    .optional()
    .describe('Search the cold tier too.'),
  as_of: isoDateSchema.optional().describe('As the store stood then.'),
};
export const recallSchema = z.object(recallShape).strict();
export type RecallInput = z.infer<typeof recallSchema>;

export const MEMORY_SORT_FIELDS = [
  'created_at',
  'updated_at',
  'accessed_at',
  'importance',
  'memory_score',
] as const;

export const listShape = {
  ...filterShape,
  include_cold: z.boolean({ error: 'must be true or false' }).optional().describe('List the cold tier too.'),
  limit: z
    .number({ error: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(1, { message: `must be from 1 to ${MEMORY_LIMITS.listLimitMax}` })
    .max(MEMORY_LIMITS.listLimitMax, { message: `must be from 1 to ${MEMORY_LIMITS.listLimitMax}` })
    .optional()
    .describe('Page size, default 20.'),
  offset: z
    .number({ error: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(0, { message: 'must be 0 or more' })
    .max(MEMORY_LIMITS.offsetMax, { message: `must be at most ${MEMORY_LIMITS.offsetMax}` })
    .optional()
    .describe('next_offset of the last page.'),
  sort: z
    .enum(MEMORY_SORT_FIELDS, { error: `must be one of ${MEMORY_SORT_FIELDS.join(', ')}` })
    .optional()
    .describe('Default created_at.'),
  order: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).optional().describe('Default desc.'),
};
export const listSchema = z.object(listShape).strict();
export type ListInput = z.infer<typeof listSchema>;

export const getShape = { id: memoryIdSchema.describe('mem_… id.') };
export const getSchema = z.object(getShape).strict();

export const historyShape = { id: memoryIdSchema.describe('mem_… id.') };
export const historySchema = z.object(historyShape).strict();

export const updateShape = {
  id: memoryIdSchema.optional().describe('Memory to change.'),
  key: keySchema.optional().describe('Or its key.'),
  project: projectSchema.optional().describe("The key's project."),
  content: contentSchema.optional().describe('New text.'),
  type: typeSchema.optional().describe('New type.'),
  tags: tagsSchema.optional().describe('Replace the tags.'),
  metadata: metadataSchema.optional().describe('Replace the metadata.'),
  importance: importanceSchema.optional().describe('New importance, 0..1.'),
  expires_at: isoDateSchema.nullable().optional().describe('New future expiry; null = never.'),
  valid_from: isoDateSchema.nullable().optional().describe('True from.'),
  valid_to: isoDateSchema.nullable().optional().describe('True until.'),
};
export const updateSchema = z
  .object(updateShape)
  .strict()
  .refine((v) => (v.id === undefined) !== (v.key === undefined), {
    message: 'give exactly one of id or key',
    path: ['id'],
  })
  .refine(
    (v) =>
      v.content !== undefined ||
      v.type !== undefined ||
      v.tags !== undefined ||
      v.metadata !== undefined ||
      v.importance !== undefined ||
      v.expires_at !== undefined ||
      v.valid_from !== undefined ||
      v.valid_to !== undefined,
    {
      message:
        'give at least one field to change: content, type, tags, metadata, importance, expires_at, valid_from or valid_to',
      path: ['content'],
    },
  )
  .refine(validityInOrder, VALIDITY_ORDER);
export type UpdateInput = z.infer<typeof updateSchema>;

export const forgetShape = {
  id: memoryIdSchema.optional().describe('Its id.'),
  key: keySchema.optional().describe('Or its key.'),
  project: projectSchema.optional().describe("The key's project."),
  filter: z.object(filterShape).strict().optional().describe('Or all memories matching it.'),
  all: z.literal(true, { error: 'must be true (or left out)' }).optional().describe('Or every memory.'),
  hard: z.boolean({ error: 'must be true or false' }).optional().describe('Purge for good.'),
};
export const forgetSchema = z
  .object(forgetShape)
  .strict()
  .refine((v) => [v.id, v.key, v.filter, v.all].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of id, key, filter or all',
    path: ['id'],
  })
  .refine((v) => v.filter === undefined || filterConditions(v.filter).length > 0, {
    message:
      `selects every memory: give at least one condition (${FILTER_FIELDS.join(', ')}; an empty list is ` +
      'none), or all: true instead of filter to forget every memory',
    path: ['filter'],
  });
export type ForgetInput = z.infer<typeof forgetSchema>;
