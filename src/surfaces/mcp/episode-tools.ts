import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import {
  type Consolidation,
  EPISODE_LIMITS,
  endSessionResultSchema,
  listEpisodesResultSchema,
  recordEpisodeResultSchema,
  recordEpisodeShape,
  sessionEpisodesShape,
} from '../../modules/episodes/episode-schemas.js';
import type { RecallResult } from '../../modules/memory/memory-output.js';
import type { SurfaceContext } from '../brain-services.js';
import { toolScope } from './tool-access.js';
import { runTool, summaryWithJson } from './tool-result.js';

function kept(consolidated: Consolidation[]): string {
  if (consolidated.length === 0) return '';
  const list = consolidated.map((c) => `${c.memory_id} (${c.reason})`).join(', ');
  return ` Kept as memories: ${list}.`;
}

/** Recall's blended episodes as lines after its hits (nothing when there are none). */
export function formatEpisodeHits(episodes: RecallResult['episodes']): string {
  if (!episodes || episodes.length === 0) return '';
  const lines = episodes.map(
    (e) => `- [${e.id}] (${e.role}, ${e.occurred_at}, score ${e.score.toFixed(2)}) ${e.content}`,
  );
  return `\n\nRecent in this session:\n${lines.join('\n')}`;
}

/** Registers `record_episode`, `list_episodes` and `end_session` on `server`. */
export function registerEpisodeTools(server: McpServer, ctx: SurfaceContext, logger?: Logger): void {
  const opts = (tool: string) => ({ tool, logger, observe: ctx.observeTool });
  const { episodes } = ctx.services;
  server.registerTool(
    'record_episode',
    {
      title: 'Record episode',
      description:
        `Log one turn or event of the session (role, content up to ${EPISODE_LIMITS.contentBytes / 1024} KiB). ` +
        'Recent ones join recall; salient ones (importance, preferences, decisions, repeats) become memories.',
      inputSchema: z.object(recordEpisodeShape).strict(),
      outputSchema: recordEpisodeResultSchema,
      annotations: {
        readOnlyHint: false,
        idempotentHint: false,
        destructiveHint: false,
        openWorldHint: false,
      },
    },
    (args, extra) =>
      runTool(
        opts('record_episode'),
        async () => episodes.record(await toolScope(ctx, extra, 'write', 'session.record_episode'), args),
        (r) =>
          `Recorded ${r.episode.id} (#${r.episode.seq}).` +
          (r.evicted.length > 0 ? ` ${r.evicted.length} left the buffer.` : '') +
          kept(r.consolidated),
      ),
  );
  server.registerTool(
    'list_episodes',
    {
      title: 'List episodes',
      description:
        "The session's buffer of recent episodes (record_episode), oldest first, with their state and any memory kept.",
      inputSchema: z.object(sessionEpisodesShape).strict(),
      outputSchema: listEpisodesResultSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      runTool(
        opts('list_episodes'),
        async () => episodes.list(await toolScope(ctx, extra, 'read', 'session.list_episodes'), args),
        (r) => summaryWithJson(`${r.episodes.length} of at most ${r.buffer_size} episodes buffered.`, r),
      ),
  );
  server.registerTool(
    'end_session',
    {
      title: 'End session',
      description:
        "Call when the conversation ends: the session's buffered episodes are reviewed and the salient ones kept as memories.",
      inputSchema: z.object(sessionEpisodesShape).strict(),
      outputSchema: endSessionResultSchema,
      annotations: {
        readOnlyHint: false,
        idempotentHint: true,
        destructiveHint: false,
        openWorldHint: false,
      },
    },
    (args, extra) =>
      runTool(
        opts('end_session'),
        async () => episodes.end(await toolScope(ctx, extra, 'write', 'session.end'), args),
        (r) => `Session ${r.session_id} ended: ${r.evicted} episodes reviewed.${kept(r.consolidated)}`,
      ),
  );
}
