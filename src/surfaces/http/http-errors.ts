import type { FastifyBaseLogger } from 'fastify';
import { type BrainErrorCode, type BrainErrorDetails, isBrainError } from '../../core/errors.js';

/** Largest request body accepted, in bytes (1 MiB). */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** The HTTP status for each error code; a code not listed is a 500 with a generic message. */
const STATUS_BY_CODE: Partial<Record<BrainErrorCode, number>> = {
  INVALID_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  UNAVAILABLE: 503,
  MAINTENANCE: 503,
  // Storage conditions a person can fix; the message says how (a 500 would say "our bug").
  STORAGE_BUSY: 503,
  STORAGE_FULL: 507,
  STORAGE_IO_ERROR: 503,
  STORAGE_CORRUPT: 503,
  STORAGE_REPLACED: 503,
};

/** The code a 4xx raised by Fastify itself is reported under. */
const CODE_BY_STATUS: Record<number, BrainErrorCode> = {
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  429: 'RATE_LIMITED',
};

/** Messages of Fastify's own body errors, rewritten so they say what to send instead. */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'request body is not valid JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request body is empty although content-type is application/json',
  FST_ERR_CTP_BODY_TOO_LARGE: `request body is larger than ${BODY_LIMIT_BYTES} bytes (1 MiB)`,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported content-type; send application/json',
};

/** Fastify errors meaning "the body is not JSON": a JSON-RPC parse error (-32700) on /mcp. */
const PARSE_ERROR_CODES = new Set(['FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_EMPTY_JSON_BODY']);

/** A 4xx raised outside a route (Fastify, Node's HTTP parser), shaped like Fastify's own errors. */
export interface ClientError {
  statusCode: number;
  code?: string;
  message: string;
  /** Extra fields for the error body, e.g. the limit that was exceeded. */
  details?: BrainErrorDetails;
}

/** The REST error body. */
export interface ErrorBody {
  error: { code: BrainErrorCode; message: string; details: BrainErrorDetails };
}

/** The JSON-RPC error body MCP endpoints answer with; `id` is null because no request id was read. */
export interface JsonRpcErrorBody {
  jsonrpc: '2.0';
  error: { code: number; message: string; data?: BrainErrorDetails };
  id: null;
}

/** A JSON-RPC error object; `data` only when there is something in it. */
export function jsonRpcError(code: number, message: string, data?: BrainErrorDetails): JsonRpcErrorBody {
  const error = data && Object.keys(data).length > 0 ? { code, message, data } : { code, message };
  return { jsonrpc: '2.0', error, id: null };
}

/**
 * Maps anything thrown in a route to a status and the JSON error body. Only BrainErrors and 4xx client
 * errors keep their message; everything else becomes a generic 500 and is logged.
 */
export function toHttpError(error: unknown, log: FastifyBaseLogger): { status: number; body: ErrorBody } {
  if (isBrainError(error)) {
    const status = STATUS_BY_CODE[error.code];
    if (status !== undefined) {
      return {
        status,
        body: { error: { code: error.code, message: error.message, details: error.details } },
      };
    }
  } else if (isClientError(error)) {
    const status = error.statusCode;
    const message = FASTIFY_MESSAGES[error.code ?? ''] ?? error.message;
    const details: BrainErrorDetails =
      error.details ?? (status === 413 ? { limit_bytes: BODY_LIMIT_BYTES } : {});
    const code = CODE_BY_STATUS[status] ?? 'INVALID_INPUT';
    return { status, body: { error: { code, message, details } } };
  }
  log.error({ err: error }, 'request failed with an internal error');
  const message = 'internal error; the server log has the details';
  return { status: 500, body: { error: { code: 'INTERNAL', message, details: {} } } };
}

/**
 * The same mapping for an MCP endpoint, which answers in JSON-RPC: same status and message, the details
 * as `data`, and code -32700 for a body that is not JSON, -32603 for an internal error, -32000 otherwise
 * (the codes the SDK's own transport uses for the same situations).
 */
export function toJsonRpcHttpError(
  error: unknown,
  log: FastifyBaseLogger,
): { status: number; body: JsonRpcErrorBody } {
  const { status, body } = toHttpError(error, log);
  const parseError = isClientError(error) && PARSE_ERROR_CODES.has(error.code ?? '');
  const code = parseError ? -32700 : body.error.code === 'INTERNAL' ? -32603 : -32000;
  return { status, body: jsonRpcError(code, body.error.message, body.error.details) };
}

/** True for the MCP endpoint, whose errors are JSON-RPC error objects rather than the REST body. */
export function isMcpPath(url: string | undefined): boolean {
  return url !== undefined && url.split('?')[0] === '/mcp';
}

/** The error response for a request to `url`: JSON-RPC on the MCP endpoint, the REST body elsewhere. */
export function errorResponse(
  error: unknown,
  url: string | undefined,
  log: FastifyBaseLogger,
): { status: number; body: ErrorBody | JsonRpcErrorBody } {
  return isMcpPath(url) ? toJsonRpcHttpError(error, log) : toHttpError(error, log);
}

function isClientError(error: unknown): error is ClientError {
  if (typeof error !== 'object' || error === null) return false;
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}
