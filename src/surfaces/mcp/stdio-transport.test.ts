import { PassThrough } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { BrainStdioTransport, idOfTruncated } from './stdio-transport.js';

/** A transport on in-memory streams, with what it passed on and what it answered. */
async function harness(maxMessageBytes: number) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const transport = new BrainStdioTransport({ stdin, stdout, maxMessageBytes });
  const messages: JSONRPCMessage[] = [];
  transport.onmessage = (message) => messages.push(message);
  await transport.start();
  let written = '';
  stdout.on('data', (chunk) => {
    written += chunk;
  });
  const replies = () =>
    written
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { id: unknown; error: { code: number; message: string } });
  return { stdin, transport, messages, replies };
}

const list = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' });

describe('BrainStdioTransport', () => {
  it('passes on messages split across chunks, with CRLF and blank lines', async () => {
    const { stdin, messages, replies } = await harness(1024);
    const text = `${list(1)}\r\n\n${list(2)}\n`;
    for (const ch of text) stdin.write(ch);
    expect(messages.map((m) => (m as { id: number }).id)).toEqual([1, 2]);
    expect(replies()).toEqual([]);
  });

  it('answers an oversize line in small chunks with its id and reads the next line', async () => {
    const { stdin, messages, replies } = await harness(100);
    const big = JSON.stringify({
      jsonrpc: '2.0',
      method: 'tools/call',
      params: { x: 'y'.repeat(5000) },
      id: 9,
    });
    for (let i = 0; i < big.length; i += 7) stdin.write(big.slice(i, i + 7));
    stdin.write(`\n${list(10)}\n`);
    expect(replies()).toEqual([
      {
        jsonrpc: '2.0',
        id: 9,
        error: {
          code: -32600,
          message: expect.stringMatching(/the message is \d+ bytes .*over the limit of 100 bytes/),
          data: { size_bytes: big.length, limit_bytes: 100 },
        },
      },
    ]);
    expect(messages.map((m) => (m as { id: number }).id)).toEqual([10]);
  });

  it('answers -32700 to a line that is not JSON and -32600 to JSON that is not JSON-RPC', async () => {
    const { stdin, messages, replies } = await harness(1024);
    stdin.write('{"jsonrpc":"2.0",\n[1,2]\n{"id":"a","method":3}\n');
    expect(replies().map((r) => [r.id, r.error.code])).toEqual([
      [null, -32700],
      [null, -32600],
      ['a', -32600],
    ]);
    expect(messages).toEqual([]);
  });
});

describe('idOfTruncated', () => {
  it('answers -32602 to a message with a __proto__ key anywhere, instead of passing it on without it', async () => {
    const { stdin, messages, replies } = await harness(4096);
    stdin.write(
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"remember","arguments":' +
        '{"content":"x","metadata":{"list":[{"__proto__":{"polluted":true}}]}}}}\n',
    );
    stdin.write(`${list(8)}\n`);
    expect(replies()).toEqual([
      {
        jsonrpc: '2.0',
        id: 7,
        error: {
          code: -32602,
          message: expect.stringMatching(
            /^Invalid params: params\.arguments\.metadata\.list\.0\.__proto__: /,
          ),
          data: { field: 'params.arguments.metadata.list.0.__proto__' },
        },
      },
    ]);
    expect(messages.map((m) => (m as { id: number }).id)).toEqual([8]);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('finds a top-level id at the start or at the end, never one nested in the params', () => {
    expect(idOfTruncated('{"jsonrpc":"2.0","id":7,"method":"x","params":{"a":"', '')).toBe(7);
    expect(idOfTruncated('{"jsonrpc":"2.0","method":"x","id":"r-1","params":', '')).toBe('r-1');
    expect(idOfTruncated('{"method":"x","params":{"id":5,', 'aaa"}},"jsonrpc":"2.0","id":12}')).toBe(12);
    expect(idOfTruncated('{"method":"x","params":{"id":5,', 'aaa","id":3}}')).toBeNull();
    expect(idOfTruncated('{"params":{"id":5}', 'x\\",\\"id\\":4}"}')).toBeNull();
  });
});
