import { randomUUID } from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import type { SurfaceContext } from '../brain-services.js';
import { createMcpServer } from '../mcp/mcp-server.js';
import { jsonRpcError } from './http-errors.js';

/** Seconds a client refused for want of a session slot is told to wait (`Retry-After`). */
export const SESSION_RETRY_AFTER_SECONDS = 10;

/** Who a session belongs to, for the per-client cap: the remote address today, the principal with auth. */
export type McpClientKey = (request: FastifyRequest) => string;

/** Wiring of {@link createMcpSessions}. */
export interface McpSessionsConfig extends SurfaceContext {
  logger: PinoLogger;
  /** Most sessions open at once, over all clients. */
  maxSessions: number;
  /** Most sessions one client (see `clientKey`) may hold. */
  maxSessionsPerClient: number;
  /** A session with no request for this long and no open stream is closed. */
  idleMs: number;
  clientKey: McpClientKey;
}

interface McpSession {
  id: string;
  client: string;
  /** The authenticated principal that opened it (null while authentication is off). */
  owner: string | null;
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  /** When a request on it last started or ended (for the idle timeout). */
  lastSeen: number;
  /** Order of that last use (for least-recently-used eviction; a clock can tie, this cannot). */
  lastUsed: number;
  /** Responses still streaming (an SSE GET, a long POST): the session is busy while any is open. */
  open: number;
}

/** Who owns a session opened by this request: its principal once authentication is on. */
function ownerOf(request: FastifyRequest): string | null {
  const principal = request.principal;
  return principal && principal.kind !== 'local' ? principal.id : null;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The stateful Streamable HTTP sessions: one transport and one McpServer per session id, created by an
 * initialize request and removed when the client sends DELETE, the transport closes, it idles out, or it
 * is evicted. At a cap (per client, or global) the least recently used idle session makes room, so that
 * abandoned sessions never lock a client out; only when every candidate is busy is the request refused.
 */
export function createMcpSessions(config: McpSessionsConfig) {
  // Holds sessions from the start of their initialize request, so that concurrent initializes count.
  const sessions = new Map<string, McpSession>();
  const log = config.logger;
  let uses = 0;

  function touch(session: McpSession): void {
    session.lastSeen = Date.now();
    session.lastUsed = ++uses;
  }

  function countOf(client: string): number {
    let count = 0;
    for (const session of sessions.values()) if (session.client === client) count++;
    return count;
  }

  /** The least recently used session with no open stream, of `client` or of anyone. */
  function leastRecentlyUsedIdle(client?: string): McpSession | undefined {
    let found: McpSession | undefined;
    for (const session of sessions.values()) {
      if (session.open > 0 || (client !== undefined && session.client !== client)) continue;
      if (found === undefined || session.lastUsed < found.lastUsed) found = session;
    }
    return found;
  }

  function remove(session: McpSession): void {
    if (sessions.get(session.id) === session) sessions.delete(session.id);
    void session.server.close();
  }

  function evict(session: McpSession, cap: 'client' | 'global'): void {
    remove(session);
    log.warn(
      { sessionId: session.id, client: session.client, cap, idleMs: Date.now() - session.lastSeen },
      `MCP session cap reached (${cap}): closed the least recently used idle session`,
    );
  }

  /** Makes room for one more session of `client`; returns the cap that stays full when all are busy. */
  function makeRoom(client: string): { cap: 'client' | 'global'; limit: number } | null {
    if (countOf(client) >= config.maxSessionsPerClient) {
      const victim = leastRecentlyUsedIdle(client);
      if (victim === undefined) return { cap: 'client', limit: config.maxSessionsPerClient };
      evict(victim, 'client');
    }
    if (sessions.size >= config.maxSessions) {
      const victim = leastRecentlyUsedIdle();
      if (victim === undefined) return { cap: 'global', limit: config.maxSessions };
      evict(victim, 'global');
    }
    return null;
  }

  async function openSession(client: string, owner: string | null): Promise<McpSession> {
    const id = randomUUID();
    const server = createMcpServer(config, { logger: log });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => id });
    const session: McpSession = { id, client, owner, transport, server, lastSeen: 0, lastUsed: 0, open: 0 };
    touch(session);
    sessions.set(id, session);
    transport.onclose = () => {
      if (sessions.get(id) === session) sessions.delete(id);
    };
    // Connect before handling the initialize request so its response flows back through this transport.
    await server.connect(transport);
    return session;
  }

  /** Picks the session for a request, or answers it with a JSON-RPC error and returns null. */
  async function sessionFor(request: FastifyRequest, reply: FastifyReply): Promise<McpSession | null> {
    const id = headerValue(request.headers['mcp-session-id']);
    if (id !== undefined) {
      const session = sessions.get(id);
      // Only its owner may use a session: another principal holding the id is told it does not exist.
      if (session && session.owner === ownerOf(request)) return session;
      await reply.code(404).send(jsonRpcError(-32001, 'Session not found: send a new initialize request'));
      return null;
    }
    if (request.method !== 'POST' || !isInitializeRequest(request.body)) {
      await reply
        .code(400)
        .send(jsonRpcError(-32000, 'Bad Request: no valid mcp-session-id header; send initialize first'));
      return null;
    }
    const client = config.clientKey(request);
    const full = makeRoom(client);
    if (full !== null) {
      const which = full.cap === 'client' ? 'allowed per client' : 'allowed in all';
      const message = `all ${full.limit} MCP sessions ${which} are busy with open streams; retry later`;
      log.warn({ client, ...full }, 'refused a new MCP session: every session at the cap is busy');
      await reply
        .code(503)
        .header('retry-after', String(SESSION_RETRY_AFTER_SECONDS))
        .send(jsonRpcError(-32000, message, { cap: full.cap, limit: full.limit }));
      return null;
    }
    return openSession(client, ownerOf(request));
  }

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const session = await sessionFor(request, reply);
    if (session === null) return;
    touch(session);
    session.open++;
    reply.raw.once('close', () => {
      session.open--;
      touch(session);
    });
    // From here the SDK writes the response (JSON or an SSE stream) straight to the Node response.
    reply.hijack();
    try {
      await session.transport.handleRequest(request.raw, reply.raw, request.body);
    } catch (error) {
      request.log.error({ err: error }, 'MCP request failed');
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(500, { 'content-type': 'application/json' });
        reply.raw.end(JSON.stringify(jsonRpcError(-32603, 'Internal server error')));
      }
    }
    // An initialize the SDK rejected (bad headers, bad version) leaves a session that nobody can name.
    if (session.transport.sessionId === undefined) remove(session);
  }

  const sweep = setInterval(
    () => {
      const cutoff = Date.now() - config.idleMs;
      for (const session of sessions.values()) {
        if (session.open <= 0 && session.lastSeen < cutoff) remove(session);
      }
    },
    Math.min(config.idleMs, 60_000),
  );
  sweep.unref();

  async function closeAll(): Promise<void> {
    clearInterval(sweep);
    const all = [...sessions.values()];
    sessions.clear();
    await Promise.allSettled(all.map((s) => s.server.close()));
  }

  return { handle, closeAll, count: () => sessions.size };
}
