import { z } from 'zod';
import { outputObject } from '../memory/memory-output.js';
import { boundedText } from '../memory/memory-schemas.js';
import { EXECUTION_STATUSES } from './execution-store.js';

/** Limits of one execution's input and output, named in every error that enforces them. */
export const EXECUTION_LIMITS = {
  codeBytes: 256 * 1024,
  /** Files passed in: at most this many, and bytes (decoded) in all. */
  inputFiles: 16,
  inputFileBytes: 512 * 1024,
  /** Files returned: at most this many, and bytes in all (the smallest first). */
  outputFiles: 16,
  outputFileBytes: 1024 * 1024,
  /** Executions one list returns at most. */
  listMax: 100,
} as const;

/** A plain file name: no path, not a dot file, not the code's own main.py. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const fileSchema = z
  .object({
    name: z
      .string({ error: 'must be a string' })
      .regex(FILE_NAME, {
        message: 'must be a plain file name of 1 to 128 characters (letters, digits, . _ -; no path)',
      })
      .refine((n) => n !== 'main.py', { message: 'must not be main.py (the code itself)' }),
    content_base64: z
      .string({ error: 'must be a string of base64' })
      .refine((s) => s.length % 4 === 0 && BASE64.test(s), { message: 'must be base64 (RFC 4648)' }),
  })
  .strict();

/** Decoded size of a base64 string that passed the schema. */
export function base64Bytes(s: string): number {
  return (s.length / 4) * 3 - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0);
}

export const codeSchema = boundedText(EXECUTION_LIMITS.codeBytes, 'must be a string of Python 3 code');

/** What `execute` takes, on every surface. The timeout's upper bound is the server's setting. */
export function executeShape(maxTimeoutMs: number) {
  return {
    code: codeSchema.describe('Python 3; the last expression is returned.'),
    files: z
      .array(fileSchema, { error: 'must be an array of {name, content_base64}' })
      .max(EXECUTION_LIMITS.inputFiles, { message: `must hold at most ${EXECUTION_LIMITS.inputFiles} files` })
      .refine((fs) => new Set(fs.map((f) => f.name)).size === fs.length, {
        message: 'must not name a file twice',
      })
      .refine(
        (fs) => fs.reduce((n, f) => n + base64Bytes(f.content_base64), 0) <= EXECUTION_LIMITS.inputFileBytes,
        { message: `must hold at most ${EXECUTION_LIMITS.inputFileBytes} bytes (512 KiB) in all, decoded` },
      )
      .optional()
      .describe('Input files {name, content_base64}.'),
    wait: z.boolean({ error: 'must be true or false' }).optional().describe('false: queue, return id.'),
    timeout_ms: z
      .number({ error: 'must be a number of milliseconds' })
      .int({ message: 'must be a whole number of milliseconds' })
      .min(100, { message: 'must be at least 100' })
      .max(maxTimeoutMs, { message: `must be at most ${maxTimeoutMs} (BRAIN_MAX_EXECUTION_TIME_MS)` })
      .optional()
      .describe(`Wall limit; default ${maxTimeoutMs}.`),
  };
}
export type ExecuteInput = z.infer<z.ZodObject<ReturnType<typeof executeShape>>>;

export const executionIdSchema = z
  .string({ error: 'must be an execution id' })
  .regex(/^exe_[0-9a-z]{26}$/, { message: 'must be an execution id (exe_ and 26 characters)' });

export const listExecutionsSchema = z
  .object({
    status: z
      .enum(EXECUTION_STATUSES, { error: `must be one of ${EXECUTION_STATUSES.join(', ')}` })
      .optional(),
    limit: z.coerce
      .number({ error: 'must be a number' })
      .int({ message: 'must be a whole number' })
      .min(1, { message: 'must be at least 1' })
      .max(EXECUTION_LIMITS.listMax, { message: `must be at most ${EXECUTION_LIMITS.listMax}` })
      .optional(),
    before: executionIdSchema.optional(),
  })
  .strict();
export type ListExecutionsInput = z.infer<typeof listExecutionsSchema>;

const outputFileSchema = z.object({ name: z.string(), content_base64: z.string() });

/** An execution as every surface returns it (the code itself is left out: its size is given). */
export const executionSchema = outputObject({
  id: z.string(),
  status: z.enum(EXECUTION_STATUSES),
  exit_code: z.number().nullable(),
  signal: z.string().nullable(),
  result: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  output_files: z.array(outputFileSchema),
  error: z.string().nullable(),
  cpu_time_ms: z.number().nullable(),
  wall_ms: z.number().nullable(),
  timeout_ms: z.number(),
  code_bytes: z.number(),
  attempts: z.number(),
  worker_id: z.string().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
});
export type ExecutionView = z.infer<typeof executionSchema>;
