import { BrainError } from '../../core/errors.js';

/** One line of a JSON-lines input: its number (from 1) and its text, without the line break. */
export interface Line {
  number: number;
  text: string;
}

/**
 * The error of one input line: names the line and the field, e.g. `line 12: content_hash: does not
 * match the content`. Nothing is imported when an input has one.
 */
export function lineError(line: number, field: string | null, message: string): BrainError {
  const where = field ? `line ${line}: ${field}` : `line ${line}`;
  return new BrainError('INVALID_INPUT', `${where}: ${message}`, {
    line,
    issues: [{ field: field ? `line ${line}: ${field}` : `line ${line}`, message }],
  });
}

/**
 * The lines of a byte stream, a chunk's worth at a time (fewer turns of the event loop than one line
 * each), in constant memory: a line longer than `maxBytes` fails instead of growing without bound, and
 * bytes that are not UTF-8 fail instead of turning into U+FFFD. A `\r` before a `\n` is dropped.
 */
export async function* readLines(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  maxBytes: number,
): AsyncGenerator<Line[]> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let number = 0;
  const decode = (bytes: Buffer): string => {
    try {
      let text = decoder.decode(bytes);
      // A byte-order mark some editors put first is not part of the JSON.
      if (number === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      return text.endsWith('\r') ? text.slice(0, -1) : text;
    } catch {
      throw lineError(number, null, 'is not valid UTF-8 text');
    }
  };
  const tooLong = () =>
    lineError(
      number + 1,
      null,
      `is longer than ${maxBytes} bytes (${maxBytes / 1024 / 1024} MiB), the most a line may hold`,
    );
  for await (const chunk of source) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const lines: Line[] = [];
    let start = 0;
    for (let nl = buffer.indexOf(0x0a, start); nl !== -1; nl = buffer.indexOf(0x0a, start)) {
      const piece = buffer.subarray(start, nl);
      if (pendingBytes + piece.length > maxBytes) throw tooLong();
      number++;
      const bytes = pending.length > 0 ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      pendingBytes = 0;
      lines.push({ number, text: decode(bytes) });
      start = nl + 1;
    }
    if (start < buffer.length) {
      pendingBytes += buffer.length - start;
      if (pendingBytes > maxBytes) throw tooLong();
      pending.push(buffer.subarray(start));
    }
    if (lines.length > 0) yield lines;
  }
  if (pendingBytes > 0) {
    number++;
    yield [{ number, text: decode(Buffer.concat(pending)) }];
  }
}

/** The JSON value of a line, or an error naming the line. */
export function parseJsonLine(line: Line): unknown {
  try {
    return JSON.parse(line.text);
  } catch (error) {
    throw lineError(line.number, null, `is not JSON (${(error as Error).message})`);
  }
}
