import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { invalidInput } from '../../core/errors.js';
import type { RequestScope } from '../../core/scope.js';
import { parseInput } from '../../core/validation.js';
import {
  endSessionResultSchema,
  listEpisodesResultSchema,
  recordEpisodeResultSchema,
  recordEpisodeShape,
} from '../../modules/episodes/episode-schemas.js';
import {
  forgetResultSchema,
  historyResultSchema,
  listResultSchema,
  memorySchema,
  recallResultSchema,
  rememberResultSchema,
} from '../../modules/memory/memory-output.js';
import {
  forgetShape,
  getShape,
  listShape,
  MEMORY_LIMITS,
  recallShape,
  rememberShape,
  sessionSchema,
  updateShape,
} from '../../modules/memory/memory-schemas.js';
import { explanationSchema } from '../../modules/memory/tier-service.js';
import { initResultSchema } from '../../modules/sessions/session-output.js';
import { initShape } from '../../modules/sessions/session-schemas.js';
import type { SurfaceContext } from '../brain-services.js';

/** The REST error body, as every route answers it (http-errors.ts builds it). */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('Stable error code, e.g. INVALID_INPUT, NOT_FOUND.'),
      message: z.string().describe('What went wrong and what to send instead.'),
      details: z.record(z.string(), z.unknown()).describe('The field and the limit, when there is one.'),
    }),
  })
  .describe('An error.');

const errors = {
  400: errorBodySchema.describe('Bad input: the field and its limit are named; nothing was written.'),
  401: errorBodySchema.describe('No credential, or one that is not valid (see WWW-Authenticate).'),
  403: errorBodySchema.describe("The credential lacks the route's scope, or the policy refused it."),
  404: errorBodySchema.describe('No such memory in this tenant.'),
  409: errorBodySchema.describe(
    'The Idempotency-Key was used for another request, or its first is still running.',
  ),
  413: errorBodySchema.describe('The body is larger than the server takes.'),
  429: errorBodySchema.describe(
    'A rate limit, the daily write limit or a quota: see Retry-After and the details.',
  ),
  503: errorBodySchema.describe(
    'The store cannot answer now, or maintenance mode refuses writes (retry later).',
  ),
};

const idParams = z.object(getShape);
const { id: _id, key: _key, project: _project, ...patchShape } = updateShape;
const {
  id: _forgetId,
  key: _forgetKey,
  project: _forgetProject,
  filter: _f,
  all: _a,
  ...deleteShape
} = forgetShape;

/**
 * Query strings carry text: the list filters' numbers, lists and flag are read from it here (`limit=20`,
 * `tags=a,b` or `tags=a&tags=b`, `include_cold=true`), and the service validates the result like any
 * other input, so a bad value gets the same error naming the field and its limit.
 */
function listInput(query: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(query)) {
    // Any number, negative or fractional too, so that the service's range check names the limit.
    if ((name === 'limit' || name === 'offset') && typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value))
      out[name] = Number(value);
    else if ((name === 'tags' || name === 'types') && typeof value === 'string')
      out[name] = value === '' ? [] : value.split(',');
    else if (name === 'include_cold' && (value === 'true' || value === 'false')) out[name] = value === 'true';
    else out[name] = value;
  }
  return out;
}

/** A batch's body is `{"memories": [...]}` and nothing else; the service checks the list itself. */
function batchInput(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalidInput('body', 'must be an object {"memories": [...]}');
  const extra = Object.keys(body).find((name) => name !== 'memories');
  if (extra !== undefined) throw invalidInput(extra, 'is not a field of a batch: send {"memories": [...]}');
  if (!('memories' in body))
    throw invalidInput('memories', `is required: a list of 1 to ${MEMORY_LIMITS.batchMax} memories`);
  return body.memories;
}

/** `?hard=true` on DELETE: the only query flag a delete takes. */
function deleteInput(id: string, query: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { id };
  for (const [name, value] of Object.entries(query))
    out[name] = name === 'hard' && (value === 'true' || value === 'false') ? value === 'true' : value;
  return out;
}

/** The memories a batch writes, counted against the daily write limit (a malformed body: one). */
function batchSize(request: FastifyRequest): number {
  const memories = (request.body as { memories?: unknown } | undefined)?.memories;
  return Array.isArray(memories) ? Math.max(1, memories.length) : 1;
}

const sessionParams = z.object({ id: sessionSchema.describe('session_id from init.') });
const { session_id: _sessionId, ...episodeBodyShape } = recordEpisodeShape;
const sessionErrors = { ...errors, 404: errorBodySchema.describe('No such session in this tenant.') };

/** The session's id from the path, as the episode service's `session_id`. */
function sessionOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

/** The episodic buffer's routes under `/v1/sessions/:id`: record, list, and end the session. */
function registerEpisodeRoutes(app: FastifyInstance, ctx: SurfaceContext, scopeOf: ScopeOf): void {
  const { episodes } = ctx.services;
  const tags = ['sessions'];
  app.post(
    '/v1/sessions/:id/episodes',
    {
      config: { access: { scope: 'write', action: 'session.record_episode' } },
      schema: {
        tags,
        summary: "Record an episode in the session's buffer",
        description:
          "Appends to the session's ring buffer (BRAIN_EPISODE_BUFFER_SIZE); an episode pushed out is kept as a memory when the consolidation rules say so.",
        params: sessionParams,
        body: z.object(episodeBodyShape).strict(),
        response: { 201: recordEpisodeResultSchema, ...sessionErrors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const input =
        body && typeof body === 'object' && !Array.isArray(body)
          ? { ...body, session_id: sessionOf(request) }
          : body;
      return reply.code(201).send(await episodes.record(scopeOf(request), input));
    },
  );
  app.get(
    '/v1/sessions/:id/episodes',
    {
      config: { access: { scope: 'read', action: 'session.list_episodes' } },
      schema: {
        tags,
        summary: "The session's buffered episodes, oldest first",
        params: sessionParams,
        response: { 200: listEpisodesResultSchema, ...sessionErrors },
      },
    },
    async (request) => episodes.list(scopeOf(request), { session_id: sessionOf(request) }),
  );
  app.post(
    '/v1/sessions/:id/end',
    {
      config: { access: { scope: 'write', action: 'session.end' } },
      schema: {
        tags,
        summary: 'End the session: consolidate its buffer',
        description:
          'Every buffered episode leaves the buffer; the salient ones become memories. Again: no change.',
        params: sessionParams,
        response: { 200: endSessionResultSchema, ...sessionErrors },
      },
    },
    async (request) => episodes.end(scopeOf(request), { session_id: sessionOf(request) }),
  );
}

/** Who a request acts for: the scope of its principal once authentication is on, else the default. */
export type ScopeOf = (request: FastifyRequest) => RequestScope;

/**
 * The REST API under `/v1`, plus the deployment guide's compatibility routes `/remember` and `/recall`.
 * Each route hands its body (or parameters) to the same service the MCP tools call, which validates it
 * with the module's zod schema; the same schemas describe the route in the OpenAPI document, so the
 * document cannot drift from what is enforced.
 */
export function registerRestRoutes(app: FastifyInstance, ctx: SurfaceContext, scopeOf: ScopeOf): void {
  const { memory, sessions } = ctx.services;
  const tags = ['memories'];

  app.post(
    '/v1/memories',
    {
      config: { access: { scope: 'write', action: 'memory.remember' } },
      schema: {
        tags,
        summary: 'Remember one memory',
        description: `Stores a fact, preference or event. A live memory with the same key (or, without a key, the same content) in the same project is updated (or reported as a duplicate) instead of stored twice. Content at most ${MEMORY_LIMITS.contentBytes} bytes.`,
        body: z.object(rememberShape).strict(),
        response: { 201: rememberResultSchema, 200: rememberResultSchema, ...errors },
      },
    },
    async (request, reply) => {
      const result = await memory.remember(scopeOf(request), request.body);
      return reply.code(result.status === 'created' ? 201 : 200).send(result);
    },
  );

  app.post(
    '/v1/memories/batch',
    {
      config: {
        access: { scope: 'write', action: 'memory.remember', writes: batchSize },
      },
      schema: {
        tags,
        summary: 'Remember several memories at once',
        description: `Up to ${MEMORY_LIMITS.batchMax} memories in one transaction: all are stored, or none.`,
        body: z.object({ memories: z.array(z.object(rememberShape).strict()) }).strict(),
        response: { 200: z.object({ results: z.array(rememberResultSchema) }), ...errors },
      },
    },
    async (request) => {
      return { results: await memory.rememberMany(scopeOf(request), batchInput(request.body)) };
    },
  );

  app.get(
    '/v1/memories',
    {
      config: { access: { scope: 'read', action: 'memory.list' } },
      schema: {
        tags,
        summary: 'List memories',
        description:
          'Newest first by default, with filters. Lists go in the query string as commas (`tags=a,b`) or repeated keys.',
        querystring: z.object(listShape),
        response: { 200: listResultSchema, ...errors },
      },
    },
    async (request) => memory.list(scopeOf(request), listInput(request.query as Record<string, unknown>)),
  );

  app.post(
    '/v1/memories/search',
    {
      config: { access: { scope: 'read', action: 'memory.recall' } },
      schema: {
        tags,
        summary: 'Recall memories by meaning and keywords',
        description:
          'Hybrid search (vectors and text, fused); text-only when no embedder works, and says so.',
        body: z.object(recallShape).strict(),
        response: { 200: recallResultSchema, ...errors },
      },
    },
    async (request) => memory.recall(scopeOf(request), request.body),
  );

  app.post(
    '/v1/memories/forget',
    {
      config: { access: { scope: 'write', action: 'memory.forget' } },
      schema: {
        tags,
        summary: 'Forget memories by id, key, filter or all',
        description: 'Exactly one of id, key, filter or all. A filter must hold a condition.',
        body: z.object(forgetShape).strict(),
        response: { 200: forgetResultSchema, ...errors },
      },
    },
    async (request) => memory.forget(scopeOf(request), request.body),
  );

  app.get(
    '/v1/memories/:id',
    {
      config: { access: { scope: 'read', action: 'memory.get' } },
      schema: {
        tags,
        summary: 'Get one memory',
        params: idParams,
        response: { 200: memorySchema, ...errors },
      },
    },
    async (request) => memory.get(scopeOf(request), request.params),
  );

  app.get(
    '/v1/memories/:id/explain',
    {
      config: { access: { scope: 'read', action: 'memory.explain' } },
      schema: {
        tags,
        summary: "A memory's score, its parts, its tier and its moves",
        description:
          "The memory_score now (importance, recency with its type's half-life, access frequency, pin) and every tier move the rebalance made, with its reason.",
        params: idParams,
        response: { 200: explanationSchema, ...errors },
      },
    },
    async (request) => {
      const { id } = parseInput(idParams, request.params);
      return ctx.services.tiers.explain(scopeOf(request), id);
    },
  );

  app.get(
    '/v1/memories/:id/history',
    {
      config: { access: { scope: 'read', action: 'memory.history' } },
      schema: {
        tags,
        summary: "A memory's versions, oldest first",
        description:
          'Every state an update or a write with the same key replaced, each with when the store held it (recorded_from, recorded_to) and its validity (valid_from, valid_to); the last is the current one.',
        params: idParams,
        response: { 200: historyResultSchema, ...errors },
      },
    },
    async (request) => memory.history(scopeOf(request), request.params),
  );

  app.patch(
    '/v1/memories/:id',
    {
      config: { access: { scope: 'write', action: 'memory.update' } },
      schema: {
        tags,
        summary: 'Change a memory',
        description: 'Only the fields given change; tags and metadata are replaced whole.',
        params: idParams,
        body: z.object(patchShape).strict(),
        response: { 200: memorySchema, ...errors },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const body = request.body;
      if (body && typeof body === 'object' && !Array.isArray(body))
        for (const name of ['id', 'key', 'project'])
          if (name in body)
            throw invalidInput(name, 'is not a field of PATCH /v1/memories/:id: the path names the memory');
      const input = body && typeof body === 'object' && !Array.isArray(body) ? { ...body, id } : body;
      return memory.update(scopeOf(request), input);
    },
  );

  app.delete(
    '/v1/memories/:id',
    {
      config: { access: { scope: 'write', action: 'memory.forget' } },
      schema: {
        tags,
        summary: 'Forget one memory',
        description: 'Soft delete; `?hard=true` purges it for good.',
        params: idParams,
        querystring: z.object(deleteShape),
        response: { 200: forgetResultSchema, ...errors },
      },
    },
    async (request) =>
      memory.forget(
        scopeOf(request),
        deleteInput((request.params as { id: string }).id, request.query as Record<string, unknown>),
      ),
  );

  app.post(
    '/v1/sessions',
    {
      config: { access: { scope: 'read', action: 'session.init' } },
      schema: {
        tags: ['sessions'],
        summary: 'Open or resume a session and load its working context',
        description:
          "What `init` does over MCP: the project's important memories first, then its recent ones.",
        body: z.object(initShape).strict(),
        response: { 200: initResultSchema, ...errors },
      },
    },
    async (request) => sessions.init(scopeOf(request), request.body ?? {}),
  );

  registerEpisodeRoutes(app, ctx, scopeOf);

  // The SomaBrain deployment guide's routes, for clients written against it.
  app.post(
    '/remember',
    {
      config: { access: { scope: 'write', action: 'memory.remember' } },
      schema: {
        tags: ['compatibility'],
        summary: 'Remember (deployment guide form)',
        description:
          'The deployment guide sends `{content, metadata}`; every other field of `POST /v1/memories` is taken too.',
        body: z.object(rememberShape).strict(),
        response: { 200: rememberResultSchema, ...errors },
      },
    },
    async (request) => memory.remember(scopeOf(request), request.body),
  );

  app.post(
    '/recall',
    {
      config: { access: { scope: 'read', action: 'memory.recall' } },
      schema: {
        tags: ['compatibility'],
        summary: 'Recall (deployment guide form)',
        description:
          'The deployment guide sends `{query, k}`; every other field of `POST /v1/memories/search` is taken too.',
        body: z.object(recallShape).strict(),
        response: { 200: recallResultSchema, ...errors },
      },
    },
    async (request) => memory.recall(scopeOf(request), request.body),
  );
}
