/**
 * STAND-INS for outside services the embedders talk to, listening on 127.0.0.1 only:
 * - `startEmbeddingsStandIn`: an OpenAI-compatible `POST /v1/embeddings` server (a stand-in for OpenAI,
 *   Ollama, vLLM…) with deterministic vectors made from the text by feature hashing, that can be told
 *   to fail, hang or answer wrongly;
 * - `startHubStandIn`: a stand-in for the Hugging Face Hub serving model files from a directory.
 * Neither is Brain code; tests use them in place of the real services, which this machine cannot reach.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createHashEmbedder } from '../src/modules/embeddings/hash-embedder.js';

/** How the stand-in answers one request. */
export type Behaviour =
  | { kind: 'ok' }
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'hang' }
  | { kind: 'drop' }
  | { kind: 'wrong-count' }
  | { kind: 'wrong-dimension' }
  | { kind: 'not-finite' }
  | { kind: 'reversed' };

export interface RecordedRequest {
  headers: http.IncomingHttpHeaders;
  body: { model?: string; input?: string[]; encoding_format?: string; dimensions?: number };
  at: number;
}

export interface EmbeddingsStandIn {
  /** Base URL up to and including /v1. */
  url: string;
  requests: RecordedRequest[];
  /** Answers the next requests with these behaviours, one each, then normally again. */
  script(...behaviours: Behaviour[]): void;
  /** How requests are answered once the script is used up (default ok). */
  setDefault(behaviour: Behaviour): void;
  close(): Promise<void>;
}

export interface EmbeddingsStandInOptions {
  /** Vector size when a request does not ask for `dimensions` (default 8). */
  dimensions?: number;
}

export async function startEmbeddingsStandIn(
  options: EmbeddingsStandInOptions = {},
): Promise<EmbeddingsStandIn> {
  const requests: RecordedRequest[] = [];
  const queue: Behaviour[] = [];
  let fallback: Behaviour = { kind: 'ok' };
  const hanging = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', () => {
      const body = JSON.parse(raw || '{}') as RecordedRequest['body'];
      requests.push({ headers: req.headers, body, at: Date.now() });
      const behaviour = queue.shift() ?? fallback;
      if (req.method !== 'POST' || req.url !== '/v1/embeddings') return send(res, 404, { error: 'no route' });
      void answer(res, behaviour, body);
    });
  });

  const answer = async (res: http.ServerResponse, behaviour: Behaviour, body: RecordedRequest['body']) => {
    const input = body.input ?? [];
    const dims = body.dimensions ?? options.dimensions ?? 8;
    if (behaviour.kind === 'hang') {
      hanging.add(res);
      return;
    }
    if (behaviour.kind === 'drop') return res.socket?.destroy();
    if (behaviour.kind === 'status') {
      if (behaviour.retryAfter) res.setHeader('retry-after', behaviour.retryAfter);
      return send(
        res,
        behaviour.status,
        behaviour.body ?? { error: { message: `stand-in ${behaviour.status}` } },
      );
    }
    const hasher = createHashEmbedder(behaviour.kind === 'wrong-dimension' ? dims + 1 : dims);
    // Scaled by 3 so that the client's normalization is observable.
    const vectors = await hasher.embed(input);
    let data = vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: Array.from(vector, (v) => v * 3),
    }));
    if (behaviour.kind === 'wrong-count') data = data.slice(1);
    if (behaviour.kind === 'reversed') data = data.reverse();
    if (behaviour.kind === 'not-finite' && data[0]) data[0].embedding[0] = Number.NaN; // sent as null
    send(res, 200, { object: 'list', model: body.model, data, usage: { prompt_tokens: 0, total_tokens: 0 } });
  };

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    script: (...behaviours) => queue.push(...behaviours),
    setDefault: (behaviour) => {
      fallback = behaviour;
    },
    close: async () => {
      for (const res of hanging) res.socket?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

export interface HubStandIn {
  /** Base URL to give transformers.js as its remote host. */
  url: string;
  /** Paths requested, e.g. `/tiny/bert/resolve/main/config.json`. */
  requests: string[];
  /** `serve` answers with the files; `fail` with 500; `hang` never answers. */
  mode: 'serve' | 'fail' | 'hang';
  close(): Promise<void>;
}

/** Serves `<root>/<org>/<name>/<file>` at `/<org>/<name>/resolve/main/<file>`, as the Hub lays out files. */
export async function startHubStandIn(root: string): Promise<HubStandIn> {
  const requests: string[] = [];
  const hub: HubStandIn = { url: '', requests, mode: 'serve', close: async () => {} };
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '/');
    requests.push(url);
    if (hub.mode === 'hang') return;
    if (hub.mode === 'fail') return send(res, 500, { error: 'stand-in failure' });
    const match = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/.exec(url);
    const file = match ? path.join(root, match[1] ?? '', match[2] ?? '') : '';
    if (!match || !file.startsWith(root) || !fs.existsSync(file))
      return send(res, 404, { error: 'not found' });
    const bytes = fs.readFileSync(file);
    res.writeHead(200, {
      'content-length': String(bytes.length),
      'content-type': 'application/octet-stream',
    });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  hub.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return hub;
}
