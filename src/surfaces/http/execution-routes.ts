import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  executeShape,
  executionIdSchema,
  executionSchema,
  listExecutionsSchema,
} from '../../modules/execution/execution-schemas.js';
import type { SurfaceContext } from '../brain-services.js';
import { errorBodySchema, type ScopeOf } from './rest-routes.js';

const errors = {
  400: errorBodySchema.describe('Bad input: the field and its limit are named; nothing was queued.'),
  404: errorBodySchema.describe('No such execution in this tenant.'),
  503: errorBodySchema.describe(
    'Execution is unavailable here (the message says what to install), or maintenance.',
  ),
};

const idParams = z.object({ id: executionIdSchema });

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

/**
 * `/v1/executions`: run Python in the sandbox (POST; answers 200 with the finished run, or 202 while it
 * is queued or running: poll GET), read one or a page, cancel (DELETE). Every route needs the
 * `execute` scope. A waiting POST answers before the request timeout: a run still going then is
 * answered 202 with its id.
 */
export function registerExecutionRoutes(
  app: FastifyInstance,
  ctx: SurfaceContext,
  scopeOf: ScopeOf,
  requestTimeoutMs: number,
): void {
  const { executions } = ctx.services;
  const tags = ['executions'];
  // Answer a second before the request timeout cuts the connection.
  const waitMs = Math.max(100, requestTimeoutMs - 1000);
  app.post(
    '/v1/executions',
    {
      config: { access: { scope: 'execute', action: 'execution.submit' } },
      schema: {
        tags,
        summary: 'Run Python 3 code in the sandbox',
        description:
          'Queues the code; with `wait` (default true) answers 200 once it ended, with stdout, stderr, the value of the last expression, exit code and times. `wait: false`, or a run that outlasts the request timeout, answers 202: poll `GET /v1/executions/{id}`.',
        body: z.object(executeShape(executions.maxTimeoutMs)).strict(),
        response: {
          200: executionSchema.describe('The run ended (succeeded, failed, timed_out or cancelled).'),
          202: executionSchema.describe('Queued or running: poll GET /v1/executions/{id}.'),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const run = await executions.execute(scopeOf(request), request.body, { waitMs });
      return reply.code(run.status === 'queued' || run.status === 'running' ? 202 : 200).send(run);
    },
  );
  app.get(
    '/v1/executions',
    {
      config: { access: { scope: 'execute', action: 'execution.list' } },
      schema: {
        tags,
        summary: "The tenant's executions, newest first",
        querystring: listExecutionsSchema,
        response: { 200: z.object({ executions: z.array(executionSchema) }), ...errors },
      },
    },
    async (request) => ({
      // The schema reads `limit` from its query-string text itself (z.coerce).
      executions: await executions.list(scopeOf(request), request.query),
    }),
  );
  app.get(
    '/v1/executions/:id',
    {
      config: { access: { scope: 'execute', action: 'execution.get' } },
      schema: {
        tags,
        summary: 'One execution: its status and, once ended, its output',
        params: idParams,
        response: { 200: executionSchema, ...errors },
      },
    },
    async (request) => executions.get(scopeOf(request), { id: idOf(request) }),
  );
  app.delete(
    '/v1/executions/:id',
    {
      config: { access: { scope: 'execute', action: 'execution.cancel' } },
      schema: {
        tags,
        summary: 'Cancel an execution',
        description:
          'A queued run ends cancelled at once; a running one is killed (by its worker, within a third of BRAIN_EXECUTION_LEASE_MS when it runs in another process). An ended run is returned as it is.',
        params: idParams,
        response: { 200: executionSchema, ...errors },
      },
    },
    async (request) => executions.cancel(scopeOf(request), { id: idOf(request) }),
  );
}
