import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction, LogController } from 'fastify';
import { REQUEST_ID_LOG_FIELD, runInRequest } from '../../core/request-context.js';

/** The header a request's id comes in (from a proxy or client) and goes back out in. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a caller's id may be: short, and nothing that could forge a log line or a header. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify's `genReqId`: the caller's `x-request-id` when it is 1-128 characters of `[A-Za-z0-9._:-]`,
 * else a new random UUID. Fastify's own `requestIdHeader` takes any header value as it comes, so the
 * header is read here instead (and `requestIdHeader` is off).
 */
export function requestIdOf(request: IncomingMessage): string {
  const given = request.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Fastify's own log lines (incoming request, request completed, errors) with the id as `request_id`;
 * every `request.log` line carries the same label. (Fastify 5's top-level `requestIdLogLabel` is
 * deprecated in favour of this.)
 */
export function requestLogController(): LogController {
  return new LogController({ requestIdLogLabel: REQUEST_ID_LOG_FIELD });
}

/**
 * The first onRequest hook: answers every response with the request's id, and runs the rest of the
 * request (hooks, handler, MCP tool calls) inside its request context, so that lines the services
 * log meanwhile through the process logger carry the id as well (core/request-context.ts).
 *
 * The header is set on the raw response, so that the MCP routes, which write the response themselves
 * (a hijacked reply skips onSend), carry it too; Node merges it into whatever headers the response
 * is written with.
 */
export function requestIdHook(
  request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  reply.raw.setHeader(REQUEST_ID_HEADER, request.id);
  runInRequest(request.id, done);
}
