import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import type { SurfaceContext } from '../brain-services.js';
import { createMcpServer } from '../mcp/mcp-server.js';
import { jsonRpcError } from './http-errors.js';

/**
 * MCP Streamable HTTP without sessions (the SDK's stateless mode: no `Mcp-Session-Id`), for replicas
 * behind a load balancer. Every POST gets its own McpServer and transport, closed when its response
 * ends, so any replica answers any request: Brain's tools keep no per-connection state (init's session
 * lives in the database), and nothing is lost when a replica dies between two requests. GET (a
 * server-to-client stream) and DELETE (ending a session) have no meaning here and are answered 405.
 */
export function createStatelessMcp(config: SurfaceContext & { logger: PinoLogger }) {
  const log = config.logger;
  const open = new Set<() => Promise<void>>();

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.method !== 'POST') {
      await reply
        .code(405)
        .header('allow', 'POST')
        .send(
          jsonRpcError(-32000, `Method not allowed: this server is stateless (BRAIN_MCP_MODE); use POST`),
        );
      return;
    }
    const server = createMcpServer(config, { logger: log });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const close = async () => {
      open.delete(close);
      await transport.close().catch(() => undefined);
      await server.close().catch(() => undefined);
    };
    open.add(close);
    reply.raw.once('close', () => void close());
    reply.hijack();
    try {
      await server.connect(transport);
      await transport.handleRequest(request.raw, reply.raw, request.body);
    } catch (error) {
      request.log.error({ err: error }, 'MCP request failed');
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(500, { 'content-type': 'application/json' });
        reply.raw.end(JSON.stringify(jsonRpcError(-32603, 'Internal server error')));
      }
    }
  }

  async function closeAll(): Promise<void> {
    await Promise.allSettled([...open].map((close) => close()));
  }

  // No session outlives its request.
  return { handle, closeAll, count: () => 0 };
}
