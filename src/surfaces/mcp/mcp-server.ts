import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Logger } from '../../core/logger.js';
import type { SurfaceContext } from '../brain-services.js';
import { registerEpisodeTools } from './episode-tools.js';
import { registerExecutionTools } from './execution-tools.js';
import { registerMemoryTools } from './memory-tools.js';
import { registerSessionTools } from './session-tools.js';

/** What the server tells a model about using Brain, sent in the MCP initialize result. */
export const MCP_INSTRUCTIONS = [
  'Brain is your long-term memory across conversations.',
  '1. Call init first, once per conversation: it returns a session_id and the memories that matter most.',
  '2. Call remember whenever the user tells you a durable fact, preference, decision or instruction ' +
    '(one self-contained statement per call; pass the session_id as session).',
  '3. Call recall before answering anything that may depend on earlier conversations, and use what it returns.',
  '4. When a memory is wrong or outdated, fix it with update_memory or remove it with forget; ' +
    'find ids with recall or list_memories.',
].join('\n');

/** Options of {@link createMcpServer}. */
export interface McpServerOptions {
  /** Receives internal errors of tool calls; they are never shown to the client. */
  logger?: Logger;
}

/**
 * Builds the MCP server named `brain` with every tool registered (init, remember, recall, get_memory,
 * list_memories, update_memory, forget, record_episode, list_episodes, end_session, execute,
 * get_execution). Not connected: the caller connects it to one transport (stdio,
 * one Streamable HTTP session, or an in-memory pair in tests). One server serves one connection.
 */
export function createMcpServer(ctx: SurfaceContext, options: McpServerOptions = {}): McpServer {
  const server = new McpServer(
    { name: 'brain', title: 'Brain', version: ctx.version },
    { instructions: MCP_INSTRUCTIONS },
  );
  registerSessionTools(server, ctx, options.logger);
  registerMemoryTools(server, ctx, options.logger);
  registerEpisodeTools(server, ctx, options.logger);
  registerExecutionTools(server, ctx, options.logger);
  return server;
}
