import { z } from 'zod';
import { outputObject } from '../memory/memory-output.js';

/** A memory as init returns it: just what a model needs in its context. */
export const contextMemorySchema = outputObject({
  id: z.string(),
  content: z.string(),
  type: z.string(),
  tags: z.array(z.string()),
  importance: z.number(),
  created_at: z.string(),
});
export type ContextMemory = z.infer<typeof contextMemorySchema>;

/** init's answer: the session and its context pack, important memories first, then recent ones. */
export const initResultSchema = outputObject({
  session_id: z.string(),
  resumed: z.boolean(),
  project: z.string().nullable(),
  started_at: z.string(),
  important: z.array(contextMemorySchema),
  recent: z.array(contextMemorySchema),
  total_memories: z.number(),
  budget_chars: z.number(),
  used_chars: z.number(),
  /** true when more memories were eligible than fit in the budget. */
  truncated: z.boolean(),
});
export type InitResult = z.infer<typeof initResultSchema>;
