import type { z } from 'zod';
import { BrainError, type FieldIssue } from './errors.js';

/**
 * Parses a boundary input with its schema. On failure throws one INVALID_INPUT BrainError whose message
 * names every bad field and its limit, e.g. `content: must be at most 65536 bytes (64 KiB) of UTF-8`.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.map(String).join('.') : '(input)',
    message:
      issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
  }));
  const message = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  throw new BrainError('INVALID_INPUT', `invalid input: ${message}`, { issues });
}
