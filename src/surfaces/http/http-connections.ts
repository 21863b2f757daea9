import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { type ClientError, errorResponse } from './http-errors.js';

/** How long a client may take to send a request: headers, then the whole request (body included). */
export interface RequestTimeouts {
  /** Whole request, headers and body, from its first byte. Never applies to a response (SSE streams). */
  requestTimeoutMs: number;
  /** Headers alone; capped at `requestTimeoutMs`. */
  headersTimeoutMs: number;
}

/**
 * Node's HTTP server options for the timeouts. Node checks them every `connectionsCheckingInterval`
 * (30 s by default, far coarser than a short timeout), so the check runs at a quarter of the shorter
 * timeout, at most once a second; it only visits connections with a request still arriving.
 */
export function serverTimeoutOptions(timeouts: RequestTimeouts) {
  const requestTimeout = timeouts.requestTimeoutMs;
  const headersTimeout = Math.min(timeouts.headersTimeoutMs, requestTimeout);
  const connectionsCheckingInterval = Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4)));
  return { requestTimeout, headersTimeout, connectionsCheckingInterval };
}

interface SocketState {
  /** Requests whose response has not closed yet. */
  open: number;
  /** The newest request on this socket, to tell whether its body is still arriving. */
  last?: IncomingMessage;
  lastResponse?: ServerResponse;
}

/** What is going on on one socket, for answering a client error on it. */
export interface SocketActivity {
  /** The request whose headers are in and whose body is still arriving, if any. */
  receiving?: IncomingMessage;
  /** True once a response has started on the socket: nothing more may be written to it then. */
  responding: boolean;
}

/**
 * Requests in flight per socket, so that a shutdown can close each keep-alive connection as soon as it
 * has nothing in flight. Node's own idle tracking misses sockets that carried an MCP SSE stream, which
 * then hold the process open until the client's keep-alive timeout.
 */
export function trackConnections(app: FastifyInstance) {
  const sockets = new Map<Socket, SocketState>();
  let draining = false;
  app.server.on('connection', (socket: Socket) => {
    sockets.set(socket, { open: 0 });
    socket.once('close', () => sockets.delete(socket));
  });
  app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const state = sockets.get(request.socket);
    if (state === undefined) return;
    state.open++;
    state.last = request;
    state.lastResponse = response;
    response.once('close', () => {
      state.open--;
      if (draining && state.open === 0) request.socket.destroy();
    });
  });
  return {
    activity(socket: Socket): SocketActivity {
      const state = sockets.get(socket);
      const last = state?.last;
      const receiving = last !== undefined && !last.complete ? last : undefined;
      const response = state?.lastResponse;
      return {
        receiving,
        responding: response?.headersSent === true && !response.writableEnded,
      };
    },
    /**
     * Closes every idle connection now and every busy one when its last response ends. A request whose
     * body is still arriving is cut at once: it cannot be served anyway, and a stalled upload must not
     * hold the drain until its request timeout. Returns how many such requests were cut.
     */
    drain(): number {
      draining = true;
      let cut = 0;
      for (const [socket, state] of sockets) {
        const receiving = state.last !== undefined && !state.last.complete;
        if (receiving) cut++;
        if (state.open === 0 || receiving) socket.destroy();
      }
      return cut;
    },
  };
}

/**
 * Fastify's `clientErrorHandler`: an error of Node's HTTP parser (a request or headers timeout, headers too
 * large, a malformed request) answered with Brain's error body — JSON-RPC when the request was for /mcp —
 * then the connection is closed. Nothing is written once a response has started on the socket.
 */
export function clientErrorHandler(
  timeouts: RequestTimeouts,
  activity: (socket: Socket) => SocketActivity,
  log: FastifyBaseLogger,
) {
  const { requestTimeout, headersTimeout } = serverTimeoutOptions(timeouts);
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const { receiving, responding } = activity(socket);
    const limits = { requestTimeout, headersTimeout };
    const clientError = describeClientError(error, receiving !== undefined, limits);
    log.info({ code: error.code, url: receiving?.url, status: clientError.statusCode }, clientError.message);
    if (socket.writable && !responding) {
      const { status, body } = errorResponse(clientError, receiving?.url, log);
      const text = JSON.stringify(body);
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${text}`,
      );
    }
    socket.destroy(error);
  };
}

function describeClientError(
  error: Error & { code?: string },
  headersReceived: boolean,
  limits: { requestTimeout: number; headersTimeout: number },
): ClientError {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // Node raises the same error for both timeouts; a request object exists once its headers are in.
    return headersReceived
      ? {
          statusCode: 408,
          code: 'REQUEST_TIMEOUT',
          message: `request body not received in full within ${limits.requestTimeout} ms; send it faster or in smaller parts`,
          details: { timeout_ms: limits.requestTimeout },
        }
      : {
          statusCode: 408,
          code: 'HEADERS_TIMEOUT',
          message: `request headers not received within ${limits.headersTimeout} ms`,
          details: { timeout_ms: limits.headersTimeout },
        };
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return { statusCode: 431, code: error.code, message: 'request headers are larger than 16 KiB' };
  }
  return { statusCode: 400, code: error.code, message: 'malformed HTTP request', details: {} };
}
