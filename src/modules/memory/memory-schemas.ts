import { z } from 'zod';

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

export const contentSchema = z
  .string({ error: 'must be a string' })
  .refine((s) => s.trim().length > 0, { message: 'must not be empty' })
  .refine((s) => byteLength(s) <= MEMORY_LIMITS.contentBytes, {
    message: `must be at most ${MEMORY_LIMITS.contentBytes} bytes (64 KiB) of UTF-8`,
  });

/** A name (project, session, key) without control characters. */
function nameSchema(max: number) {
  return (
    z
      .string({ error: 'must be a string' })
      .trim()
      .min(1, { message: 'must not be empty' })
      .max(max, { message: `must be at most ${max} characters` })
      // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
      .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { message: 'must not contain control characters' })
  );
}

export const projectSchema = nameSchema(MEMORY_LIMITS.nameChars);
export const sessionSchema = nameSchema(MEMORY_LIMITS.nameChars);
export const keySchema = nameSchema(MEMORY_LIMITS.keyChars);

export const typeSchema = z.string({ error: 'must be a string' }).regex(/^[a-z][a-z0-9_]{0,31}$/, {
  message: `must be 1-32 lowercase letters, digits or _ starting with a letter (e.g. ${BUILTIN_MEMORY_TYPES.join(', ')})`,
});

export const tagSchema = z
  .string({ error: 'must be a string' })
  .trim()
  .min(1, { message: 'must not be empty' })
  .max(MEMORY_LIMITS.tagChars, { message: `must be at most ${MEMORY_LIMITS.tagChars} characters` })
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { message: 'must not contain control characters' });

export const tagsSchema = z
  .array(tagSchema, { error: 'must be an array of strings' })
  .max(MEMORY_LIMITS.tags, { message: `must have at most ${MEMORY_LIMITS.tags} tags` })
  .transform((tags) => [...new Set(tags)]);

export const metadataSchema = z
  .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
  .refine((m) => byteLength(JSON.stringify(m)) <= MEMORY_LIMITS.metadataBytes, {
    message: `must be at most ${MEMORY_LIMITS.metadataBytes} bytes (16 KiB) as JSON`,
  });

export const importanceSchema = z
  .number({ error: 'must be a number' })
  .min(0, { message: 'must be between 0 and 1' })
  .max(1, { message: 'must be between 0 and 1' });

const isoDateSchema = z.iso.datetime({
  offset: true,
  message: 'must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z',
});

export const ttlSecondsSchema = z
  .number({ error: 'must be a number' })
  .int({ message: 'must be a whole number of seconds' })
  .min(1, { message: `must be from 1 to ${MEMORY_LIMITS.ttlSecondsMax} seconds` })
  .max(MEMORY_LIMITS.ttlSecondsMax, { message: `must be from 1 to ${MEMORY_LIMITS.ttlSecondsMax} seconds` });

export const memoryIdSchema = z
  .string({ error: 'must be a string' })
  .regex(/^mem_[0-9a-z]{26}$/, { message: 'must be a memory id like mem_01hx… (mem_ and 26 characters)' });

export const rememberShape = {
  content: contentSchema.describe(
    'The text to remember: one self-contained fact, preference, event or instruction.',
  ),
  key: keySchema
    .optional()
    .describe('Optional stable name; remembering with an existing key replaces that memory.'),
  type: typeSchema
    .optional()
    .describe(`Kind of memory: ${BUILTIN_MEMORY_TYPES.join(', ')}, or your own. Default fact.`),
  tags: tagsSchema.optional().describe('Labels to filter by later.'),
  metadata: metadataSchema.optional().describe('Free JSON object stored with the memory.'),
  importance: importanceSchema
    .optional()
    .describe('0..1, default 0.5; raises the memory in recall and init.'),
  project: projectSchema.optional().describe('Project the memory belongs to; none means global.'),
  session: sessionSchema.optional().describe('Session id (from init) that produced the memory.'),
  ttl_seconds: ttlSecondsSchema.optional().describe('Forget automatically after this many seconds.'),
  expires_at: isoDateSchema.optional().describe('Forget automatically at this time (ISO 8601).'),
};

export const rememberSchema = z
  .object(rememberShape)
  .strict()
  .refine((v) => !(v.ttl_seconds !== undefined && v.expires_at !== undefined), {
    message: 'give ttl_seconds or expires_at, not both',
    path: ['ttl_seconds'],
  });
export type RememberInput = z.infer<typeof rememberSchema>;

export const rememberManySchema = z
  .array(rememberSchema)
  .min(1, { message: 'must hold at least one memory' })
  .max(MEMORY_LIMITS.batchMax, { message: `must hold at most ${MEMORY_LIMITS.batchMax} memories` });

const filterShape = {
  project: projectSchema.optional().describe('Only memories of this project.'),
  session: sessionSchema.optional().describe('Only memories of this session.'),
  types: z
    .array(typeSchema)
    .min(1, { message: 'must not be empty' })
    .max(MEMORY_LIMITS.typesMax, { message: `must have at most ${MEMORY_LIMITS.typesMax} types` })
    .optional()
    .describe('Only memories of these types.'),
  tags: tagsSchema.optional().describe('Only memories carrying all of these tags.'),
  since: isoDateSchema.optional().describe('Only memories created at or after this time.'),
  until: isoDateSchema.optional().describe('Only memories created before this time.'),
};

export const recallShape = {
  query: z
    .string({ error: 'must be a string' })
    .refine((s) => s.trim().length > 0, { message: 'must not be empty' })
    .refine((s) => s.length <= MEMORY_LIMITS.queryChars, {
      message: `must be at most ${MEMORY_LIMITS.queryChars} characters`,
    })
    .describe('What to look for, in natural language or keywords.'),
  k: z
    .number({ error: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(1, { message: `must be from 1 to ${MEMORY_LIMITS.kMax}` })
    .max(MEMORY_LIMITS.kMax, { message: `must be from 1 to ${MEMORY_LIMITS.kMax}` })
    .optional()
    .describe('How many memories to return, 1..100, default 10.'),
  ...filterShape,
  include_cold: z
    .boolean({ error: 'must be true or false' })
    .optional()
    .describe('Also search cold-tier memories.'),
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
  limit: z
    .number({ error: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(1, { message: `must be from 1 to ${MEMORY_LIMITS.listLimitMax}` })
    .max(MEMORY_LIMITS.listLimitMax, { message: `must be from 1 to ${MEMORY_LIMITS.listLimitMax}` })
    .optional()
    .describe('Page size, 1..200, default 20.'),
  offset: z
    .number({ error: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(0, { message: 'must be 0 or more' })
    .optional()
    .describe('How many memories to skip (use next_offset of the previous page).'),
  sort: z.enum(MEMORY_SORT_FIELDS, { error: `must be one of ${MEMORY_SORT_FIELDS.join(', ')}` }).optional(),
  order: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).optional(),
};
export const listSchema = z.object(listShape).strict();
export type ListInput = z.infer<typeof listSchema>;

export const getShape = { id: memoryIdSchema.describe('The memory id returned by remember or recall.') };
export const getSchema = z.object(getShape).strict();

export const updateShape = {
  id: memoryIdSchema.optional().describe('Memory to change, by id.'),
  key: keySchema.optional().describe('Memory to change, by key (with project if it has one).'),
  project: projectSchema.optional().describe('Project of the keyed memory to change.'),
  content: contentSchema.optional(),
  type: typeSchema.optional(),
  tags: tagsSchema.optional().describe('Replaces the tags.'),
  metadata: metadataSchema.optional().describe('Replaces the metadata.'),
  importance: importanceSchema.optional(),
  expires_at: isoDateSchema.nullable().optional().describe('New expiry, or null to keep forever.'),
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
      v.expires_at !== undefined,
    {
      message: 'give at least one field to change: content, type, tags, metadata, importance or expires_at',
      path: ['content'],
    },
  );
export type UpdateInput = z.infer<typeof updateSchema>;

export const forgetShape = {
  id: memoryIdSchema.optional().describe('Forget this memory.'),
  key: keySchema.optional().describe('Forget the memory with this key (with project if it has one).'),
  filter: z
    .object({ ...filterShape, before: isoDateSchema.optional().describe('Created before this time.') })
    .strict()
    .optional()
    .describe('Forget every memory matching all of these; at least one field.'),
  project: projectSchema.optional().describe('Project of the keyed memory.'),
  hard: z
    .boolean({ error: 'must be true or false' })
    .optional()
    .describe('true purges the content for good; default false keeps a recoverable tombstone.'),
};
export const forgetSchema = z
  .object(forgetShape)
  .strict()
  .refine((v) => [v.id, v.key, v.filter].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of id, key or filter',
    path: ['id'],
  })
  .refine((v) => v.filter === undefined || Object.values(v.filter).some((x) => x !== undefined), {
    message: 'filter must have at least one field (project, session, types, tags, since, until, before)',
    path: ['filter'],
  });
export type ForgetInput = z.infer<typeof forgetSchema>;
