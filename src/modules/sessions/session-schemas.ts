import { z } from 'zod';
import { projectSchema, sessionSchema } from '../memory/memory-schemas.js';

export const SESSION_LIMITS = {
  budgetMin: 500,
  budgetMax: 200_000,
  budgetDefault: 8_000,
  clientChars: 128,
} as const;

export const initShape = {
  project: projectSchema.optional().describe('Project to load context for; none loads global memories.'),
  session_id: sessionSchema
    .optional()
    .describe('Resume this session (from an earlier init) instead of opening a new one.'),
  client: z
    .string({ error: 'must be a string' })
    .max(SESSION_LIMITS.clientChars, { message: `must be at most ${SESSION_LIMITS.clientChars} characters` })
    .optional()
    .describe('Name of the calling client, kept with the session.'),
  budget_chars: z
    .number({ error: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(SESSION_LIMITS.budgetMin, {
      message: `must be from ${SESSION_LIMITS.budgetMin} to ${SESSION_LIMITS.budgetMax}`,
    })
    .max(SESSION_LIMITS.budgetMax, {
      message: `must be from ${SESSION_LIMITS.budgetMin} to ${SESSION_LIMITS.budgetMax}`,
    })
    .optional()
    .describe('Most characters of memory content to return, default 8000 (about 2000 tokens).'),
};
export const initSchema = z.object(initShape).strict();
export type InitInput = z.infer<typeof initSchema>;
