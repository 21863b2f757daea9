import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type BrainError, type BrainErrorCode, isBrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ToolObserver } from '../brain-services.js';

/** What a tool call needs to turn an outcome into a result: its name (for messages) and where to log. */
export interface ToolCallOptions {
  tool: string;
  /** Receives internal errors (never shown to the model); none means they are not logged here. */
  logger?: Logger | undefined;
  /** Told of the call's outcome and duration (metrics). */
  observe?: ToolObserver | undefined;
}

/** Error codes whose message is written for the caller; every other code gets a generic message. */
const CALLER_CODES: ReadonlySet<BrainErrorCode> = new Set<BrainErrorCode>([
  'INVALID_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'FORBIDDEN',
  'UNAUTHENTICATED',
  'RATE_LIMITED',
  'QUOTA_EXCEEDED',
  'MAINTENANCE',
  'UNAVAILABLE',
  'SANDBOX_TIMEOUT',
  'STORAGE_BUSY',
  'STORAGE_FULL',
  'STORAGE_IO_ERROR',
  'STORAGE_CORRUPT',
  'STORAGE_REPLACED',
]);

/** The key under `_meta` where an error result carries its code and details for programs. */
export const ERROR_META_KEY = 'brain/error';

/** A successful result: the service's value as `structuredContent`, plus text a model can read. */
export function toolSuccess(structured: object, text: string): CallToolResult {
  return { structuredContent: { ...structured }, content: [{ type: 'text', text }] };
}

/**
 * Maps anything thrown by a service to an `isError` result whose text says what went wrong and what to
 * do next. Unknown and internal errors get a generic text (never a stack trace) and go to the logger.
 * No `structuredContent` is set: clients validate it against the tool's output schema.
 */
export function toolError(error: unknown, options: ToolCallOptions): CallToolResult {
  const known = isBrainError(error) && CALLER_CODES.has(error.code) ? error : null;
  if (!known) {
    options.logger?.error({ err: error, tool: options.tool }, 'MCP tool failed with an internal error');
    return errorResult(
      'INTERNAL',
      {},
      `${options.tool} failed because of an internal error in Brain (the server log has the details). ` +
        'Try once more; if it fails again, tell the user that Brain is not working right now.',
    );
  }
  return errorResult(known.code, known.details, describeError(known, options.tool));
}

/**
 * Runs one service call and maps its outcome: the value through `format` to a success result, or any
 * error through {@link toolError}. Every tool handler goes through here.
 */
export async function runTool<T extends object>(
  options: ToolCallOptions,
  call: () => Promise<T>,
  format: (result: T) => string,
): Promise<CallToolResult> {
  const start = performance.now();
  const seconds = () => (performance.now() - start) / 1000;
  try {
    const result = await call();
    options.observe?.(options.tool, 'ok', seconds());
    return toolSuccess(result, format(result));
  } catch (error) {
    options.observe?.(options.tool, 'error', seconds());
    return toolError(error, options);
  }
}

/**
 * A one-line summary followed by the value as compact JSON: the text form of most tool results. Not
 * indented: indentation grows with nesting (a deeply nested value would multiply its size) and a model
 * reads compact JSON as well, for fewer tokens.
 */
export function summaryWithJson(summary: string, value: unknown): string {
  return `${summary}\n${JSON.stringify(value)}`;
}

function errorResult(code: BrainErrorCode, details: object, text: string): CallToolResult {
  return {
    isError: true,
    content: [{ type: 'text', text: `[${code}] ${text}` }],
    _meta: { [ERROR_META_KEY]: { code, details } },
  };
}

function describeError(error: BrainError, tool: string): string {
  switch (error.code) {
    case 'INVALID_INPUT': {
      const issues = error.details.issues ?? [];
      const lines =
        issues.length > 0 ? issues.map((i) => `- ${i.field}: ${i.message}`) : [`- ${error.message}`];
      return `${tool} was not run because of invalid arguments:\n${lines.join('\n')}\nFix these and call ${tool} again; nothing was changed.`;
    }
    case 'NOT_FOUND':
      return (
        `${error.message}. The id or key may be wrong, or the memory was forgotten or has expired. ` +
        'Call recall with words from the memory, or list_memories, to find its current id, then try again.'
      );
    case 'CONFLICT':
      return `${tool} conflicts with what Brain holds: ${error.message}. Nothing was changed; adjust the arguments and try again.`;
    case 'FORBIDDEN':
    case 'UNAUTHENTICATED':
      return `${tool} is not allowed: ${error.message}. Ask the user to check Brain's credentials; retrying will not help.`;
    case 'RATE_LIMITED':
    case 'QUOTA_EXCEEDED':
      return `${tool} was refused: ${error.message}. Wait before calling Brain again, or tell the user the limit was reached.`;
    case 'SANDBOX_TIMEOUT':
      return `${tool} ran out of time: ${error.message}. Make the work smaller or faster and try again.`;
    case 'STORAGE_BUSY':
    case 'STORAGE_FULL':
    case 'STORAGE_IO_ERROR':
    case 'STORAGE_CORRUPT':
    case 'STORAGE_REPLACED':
      return describeStorageError(error, tool);
    case 'UNAVAILABLE':
      // A part missing on this server (the sandbox): retrying does not help until someone installs it.
      if (typeof error.details.problem === 'string')
        return `${tool} is not available on this server: ${error.message}. Tell the user; retrying will not help until it is installed.`;
      return `${tool} could not run now: ${error.message}. Brain is busy or in maintenance; try again in a minute.`;
    default:
      return `${tool} could not run now: ${error.message}. Brain is busy or in maintenance; try again in a minute.`;
  }
}

/** Storage conditions: the message names the file and the fix; the model learns whether retrying helps. */
function describeStorageError(error: BrainError, tool: string): string {
  switch (error.code) {
    case 'STORAGE_BUSY':
      return `${tool} could not run now: ${error.message}. Wait a few seconds and call ${tool} again.`;
    case 'STORAGE_FULL':
    case 'STORAGE_IO_ERROR':
      return (
        `${tool} failed: ${error.message}. Tell the user that Brain cannot write to its disk; ` +
        'retrying will not help until the disk has space again (or is repaired).'
      );
    case 'STORAGE_CORRUPT':
      return (
        `${tool} failed: ${error.message}. Tell the user that Brain's database is damaged and must be ` +
        'restored or recovered; retrying will not help.'
      );
    default:
      return (
        `${tool} was refused: ${error.message}. Tell the user to restart Brain; retrying will not help ` +
        'until then.'
      );
  }
}
