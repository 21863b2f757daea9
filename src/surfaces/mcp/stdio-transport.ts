import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../../core/logger.js';
import { inspectJson } from '../../core/validation.js';

/**
 * The largest JSON-RPC message `brain mcp` reads from stdin: 4 MiB. The largest valid tool call is
 * about 1 MiB even with every string escaped, so this leaves room without letting one line hold
 * unbounded memory.
 */
export const MAX_STDIO_MESSAGE_BYTES = 4 * 1024 * 1024;

/** JSON-RPC 2.0 error codes this transport answers with. */
export const JSONRPC_PARSE_ERROR = -32700;
export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_INVALID_PARAMS = -32602;

/** How much of an oversize line's start and end is kept to find its id; the rest is dropped unread. */
const KEEP_BYTES = 1024;

type RequestId = string | number;

export interface BrainStdioTransportOptions {
  stdin?: Readable;
  stdout?: Writable;
  /** Defaults to {@link MAX_STDIO_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** Receives a warning for each line answered with an error instead of being passed on. */
  logger?: Logger;
}

const STRING_OR_NUMBER = String.raw`(-?\d+|"(?:[^"\\]|\\.)*")`;
/** `{"jsonrpc":"2.0","id":7,…` or `{"jsonrpc":"2.0","method":"…","id":7,…`: an id before any nested value. */
const ID_AT_START = new RegExp(
  String.raw`^\s*\{\s*(?:"(?:jsonrpc|method)"\s*:\s*"(?:[^"\\]|\\.)*"\s*,\s*)*"id"\s*:\s*${STRING_OR_NUMBER}`,
);
/** `…,"id":7}`: the id as the last member of the top-level object (where the MCP SDK puts it). */
const ID_AT_END = new RegExp(String.raw`[,{]\s*"id"\s*:\s*${STRING_OR_NUMBER}\s*\}\s*$`);

/** The id of a message read only in part, from its first and last bytes; null when neither shows it. */
export function idOfTruncated(head: string, tail: string): RequestId | null {
  const match = ID_AT_START.exec(head) ?? ID_AT_END.exec(tail);
  if (!match?.[1]) return null;
  try {
    return JSON.parse(match[1]) as RequestId;
  } catch {
    return null;
  }
}

function idOf(value: unknown): RequestId | null {
  const id = (value as { id?: unknown } | null)?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

const mib = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;

/** An oversize line being skipped: its size so far, and its first and last bytes. */
interface Skipping {
  bytes: number;
  head: Buffer;
  tail: Buffer;
}

/**
 * MCP over stdio with a bounded line reader, in place of the SDK's `StdioServerTransport`. The SDK's
 * reader buffers a line whole and, past 10 MiB, closes the transport: the process then exits without a
 * reply or a log line. This one reads newline-delimited JSON-RPC, passes each valid message on, and
 * answers instead of closing: a line over the limit gets -32600 (its rest is dropped as it arrives,
 * never buffered) with the request's id when its first or last bytes show it; a line that is not JSON
 * gets -32700 and one that is not JSON-RPC gets -32600. Each is logged as a warning, and the next line
 * is served as usual.
 */
export class BrainStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private readonly stdin: Readable;
  private readonly stdout: Writable;
  private readonly max: number;
  private readonly logger: Logger | undefined;
  private chunks: Buffer[] = [];
  private size = 0;
  private skipping: Skipping | null = null;
  private started = false;

  constructor(options: BrainStdioTransportOptions = {}) {
    this.stdin = options.stdin ?? process.stdin;
    this.stdout = options.stdout ?? process.stdout;
    this.max = options.maxMessageBytes ?? MAX_STDIO_MESSAGE_BYTES;
    this.logger = options.logger;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('BrainStdioTransport already started');
    this.started = true;
    this.stdin.on('data', this.onData);
    this.stdin.on('error', this.onStreamError);
  }

  async close(): Promise<void> {
    this.stdin.off('data', this.onData);
    this.stdin.off('error', this.onStreamError);
    if (this.stdin.listenerCount('data') === 0) this.stdin.pause();
    this.chunks = [];
    this.size = 0;
    this.skipping = null;
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    return this.writeLine(JSON.stringify(message));
  }

  private writeLine(json: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.stdout.write(`${json}\n`)) resolve();
      else this.stdout.once('drain', resolve);
    });
  }

  private readonly onStreamError = (error: Error) => this.onerror?.(error);

  private readonly onData = (chunk: Buffer | string) => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (;;) {
      const newline = data.indexOf(0x0a, start);
      if (newline === -1) {
        this.append(data.subarray(start));
        return;
      }
      this.append(data.subarray(start, newline));
      this.endLine();
      start = newline + 1;
    }
  };

  /** Adds part of the current line; past the limit, keeps only its first and last bytes. */
  private append(part: Buffer): void {
    if (part.length === 0) return;
    if (!this.skipping && this.size + part.length <= this.max) {
      this.chunks.push(part);
      this.size += part.length;
      return;
    }
    if (!this.skipping) {
      const sofar = Buffer.concat(this.chunks, this.size);
      const head = Buffer.concat([sofar.subarray(0, KEEP_BYTES), part.subarray(0, KEEP_BYTES)]);
      this.skipping = {
        bytes: this.size,
        head: Buffer.from(head.subarray(0, KEEP_BYTES)),
        tail: Buffer.from(sofar.subarray(Math.max(0, sofar.length - KEEP_BYTES))),
      };
      this.chunks = [];
      this.size = 0;
    }
    const skipping = this.skipping;
    skipping.bytes += part.length;
    const tail = part.length >= KEEP_BYTES ? part : Buffer.concat([skipping.tail, part]);
    // A copy, so that the large chunk the tail came from can be freed.
    skipping.tail = Buffer.from(tail.subarray(Math.max(0, tail.length - KEEP_BYTES)));
  }

  private endLine(): void {
    const skipping = this.skipping;
    if (skipping) {
      this.skipping = null;
      this.rejectOversize(skipping);
      return;
    }
    const line = Buffer.concat(this.chunks, this.size).toString('utf8').replace(/\r$/, '');
    this.chunks = [];
    this.size = 0;
    if (line.trim() !== '') this.handleLine(line);
  }

  private handleLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      const why = (error as Error).message;
      this.logger?.warn(
        { bytes: Buffer.byteLength(line), error: why },
        'stdio line is not JSON; answered -32700',
      );
      this.reply(null, JSONRPC_PARSE_ERROR, `Parse error: the line is not valid JSON (${why})`);
      return;
    }
    // Checked before the SDK's schemas copy the message: a copy drops an own `__proto__` key without a
    // word, so a tool would run on arguments other than those sent.
    const proto = inspectJson(parsed, { wellFormedText: false });
    if (proto) {
      const field = proto.path.join('.');
      this.logger?.warn({ id: idOf(parsed), field }, 'stdio message has a __proto__ key; answered -32602');
      this.reply(
        idOf(parsed),
        JSONRPC_INVALID_PARAMS,
        `Invalid params: ${field}: the key __proto__ is not allowed (it cannot be kept); nothing in the message was run`,
        { field },
      );
      return;
    }
    const message = JSONRPCMessageSchema.safeParse(parsed);
    if (!message.success) {
      const id = idOf(parsed);
      this.logger?.warn({ id }, 'stdio message is not a JSON-RPC 2.0 message; answered -32600');
      this.reply(
        id,
        JSONRPC_INVALID_REQUEST,
        'Invalid Request: expected a JSON-RPC 2.0 request, notification or response',
      );
      return;
    }
    try {
      this.onmessage?.(message.data);
    } catch (error) {
      this.onerror?.(error as Error);
    }
  }

  private rejectOversize(skipping: Skipping): void {
    const id = idOfTruncated(skipping.head.toString('utf8'), skipping.tail.toString('utf8'));
    this.logger?.warn(
      { bytes: skipping.bytes, limitBytes: this.max, id },
      `stdio message of ${skipping.bytes} bytes is over the ${this.max}-byte limit; discarded and answered -32600`,
    );
    this.reply(
      id,
      JSONRPC_INVALID_REQUEST,
      `Invalid Request: the message is ${skipping.bytes} bytes (${mib(skipping.bytes)}), over the limit of ` +
        `${this.max} bytes (${mib(this.max)}) for one message on stdio; nothing in it was run`,
      { size_bytes: skipping.bytes, limit_bytes: this.max },
    );
  }

  private reply(id: RequestId | null, code: number, message: string, data?: Record<string, unknown>): void {
    const error = data ? { code, message, data } : { code, message };
    this.writeLine(JSON.stringify({ jsonrpc: '2.0', id, error })).catch(() => undefined);
  }
}
