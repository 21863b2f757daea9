import { z } from 'zod';
import { outputObject } from '../memory/memory-output.js';
import {
  boundedText,
  importanceSchema,
  isoDateSchema,
  metadataSchema,
  sessionSchema,
} from '../memory/memory-schemas.js';
import { EPISODE_ROLES } from './episode-store.js';

/** Limits of the episodic buffer, named in every error that enforces them. */
export const EPISODE_LIMITS = {
  contentBytes: 16 * 1024,
  /** Episodes a recall inside a session blends in, at most. */
  recallMax: 5,
} as const;

export const episodeContentSchema = boundedText(EPISODE_LIMITS.contentBytes);

export const roleSchema = z.enum(EPISODE_ROLES, {
  error: `must be one of ${EPISODE_ROLES.join(', ')}`,
});

export const recordEpisodeShape = {
  session_id: sessionSchema.describe('session_id from init.'),
  role: roleSchema.describe('Who spoke.'),
  content: episodeContentSchema.describe('What was said or done.'),
  occurred_at: isoDateSchema.optional().describe('When; default now.'),
  importance: importanceSchema.optional().describe('0..1; high: keep it.'),
  metadata: metadataSchema.optional().describe('Any JSON object.'),
};
export const recordEpisodeSchema = z.object(recordEpisodeShape).strict();
export type RecordEpisodeInput = z.infer<typeof recordEpisodeSchema>;

export const sessionEpisodesShape = { session_id: sessionSchema.describe('session_id from init.') };
export const sessionEpisodesSchema = z.object(sessionEpisodesShape).strict();

/** An episode as every surface returns it. */
export const episodeSchema = outputObject({
  id: z.string(),
  session_id: z.string(),
  seq: z.number(),
  role: z.enum(EPISODE_ROLES),
  content: z.string(),
  occurred_at: z.string(),
  importance: z.number().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  state: z.enum(['buffered', 'evicted', 'consolidated']),
  memory_id: z.string().nullable(),
  consolidation_reason: z.string().nullable(),
});
export type EpisodeView = z.infer<typeof episodeSchema>;

/** One memory consolidation made (or episodes linked to a memory made before). */
export const consolidationSchema = outputObject({
  memory_id: z.string(),
  reason: z.string(),
  episode_ids: z.array(z.string()),
});
export type Consolidation = z.infer<typeof consolidationSchema>;

export const recordEpisodeResultSchema = outputObject({
  episode: episodeSchema,
  /** Episodes this write pushed out of the buffer. */
  evicted: z.array(z.string()),
  consolidated: z.array(consolidationSchema),
});
export type RecordEpisodeResult = z.infer<typeof recordEpisodeResultSchema>;

export const listEpisodesResultSchema = outputObject({
  session_id: z.string(),
  buffer_size: z.number(),
  episodes: z.array(episodeSchema),
});
export type ListEpisodesResult = z.infer<typeof listEpisodesResultSchema>;

export const endSessionResultSchema = outputObject({
  session_id: z.string(),
  evicted: z.number(),
  consolidated: z.array(consolidationSchema),
});
export type EndSessionResult = z.infer<typeof endSessionResultSchema>;

/** A recent episode recall blends in: its lexical match to the query times its temporal decay. */
export const episodeHitSchema = outputObject({
  id: z.string(),
  role: z.enum(EPISODE_ROLES),
  content: z.string(),
  occurred_at: z.string(),
  score: z.number(),
});
export type EpisodeHit = z.infer<typeof episodeHitSchema>;
