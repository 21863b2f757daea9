import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import {
  type ContextMemory,
  type InitResult,
  initResultSchema,
} from '../../modules/sessions/session-output.js';
import { initShape } from '../../modules/sessions/session-schemas.js';
import type { SurfaceContext } from '../brain-services.js';
import { toolScope } from './tool-access.js';
import { runTool } from './tool-result.js';

function formatSection(title: string, memories: ContextMemory[]): string[] {
  if (memories.length === 0) return [];
  const lines = memories.map((m) => {
    const tags = m.tags.length > 0 ? `, tags: ${m.tags.join(', ')}` : '';
    return `- [${m.id}] (${m.type}, importance ${m.importance}${tags}) ${m.content.replace(/\n/g, '\n  ')}`;
  });
  return ['', `${title}:`, ...lines];
}

/** The context pack as text a model reads at the start of a conversation. */
export function formatInit(result: InitResult): string {
  const where = result.project === null ? 'global memories' : `project "${result.project}"`;
  const shown = result.important.length + result.recent.length;
  const head = [
    `Brain session ${result.session_id} (${result.resumed ? 'resumed' : 'new'}) for ${where}.`,
    `${result.total_memories} memories stored; ${shown} shown below (${result.used_chars} of ${result.budget_chars} characters).`,
  ];
  if (result.truncated) head.push('More memories exist than fit here: use recall to search them.');
  if (shown === 0) head.push('Nothing is remembered yet.');
  const tail = [
    '',
    `Pass session: "${result.session_id}" to remember so memories record this conversation. Call recall before ` +
      'answering questions that may depend on earlier conversations, and remember for durable new facts.',
  ];
  return [
    ...head,
    ...formatSection('Important', result.important),
    ...formatSection('Recent', result.recent),
    ...tail,
  ].join('\n');
}

/** Registers `init` on `server`. */
export function registerSessionTools(server: McpServer, ctx: SurfaceContext, logger?: Logger): void {
  server.registerTool(
    'init',
    {
      title: 'Initialize session',
      description:
        'Call first in every conversation. Opens a session (or resumes session_id) and returns the memories that ' +
        'matter most, then the most recent, within budget_chars. truncated: more exist, so use recall. Pass the ' +
        'session_id to remember.',
      inputSchema: z.object(initShape).strict(),
      outputSchema: initResultSchema,
      annotations: {
        readOnlyHint: false,
        idempotentHint: false,
        destructiveHint: false,
        openWorldHint: false,
      },
    },
    (args, extra) =>
      runTool(
        { tool: 'init', logger, observe: ctx.observeTool },
        async () => ctx.services.sessions.init(await toolScope(ctx, extra, 'read', 'session.init'), args),
        formatInit,
      ),
  );
}
