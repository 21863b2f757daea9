import { z } from 'zod';
import { nameSchema, projectSchema, sessionSchema } from '../memory/memory-schemas.js';

export const SESSION_LIMITS = {
  budgetMin: 500,
  budgetMax: 200_000,
  budgetDefault: 8_000,
  clientChars: 128,
} as const;

export const initShape = {
  project: projectSchema.optional().describe('Project; none = global memories.'),
  session_id: sessionSchema.optional().describe('Resume this session.'),
  client: nameSchema(SESSION_LIMITS.clientChars).optional().describe('Your client name.'),
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
    .describe('Most characters of memories, default 8000.'),
};
export const initSchema = z.object(initShape).strict();
export type InitInput = z.infer<typeof initSchema>;
