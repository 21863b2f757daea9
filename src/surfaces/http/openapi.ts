import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

/**
 * The OpenAPI 3.1 document at `/openapi.json`, generated from the routes' own zod schemas
 * (fastify-type-provider-zod's transform, collected by @fastify/swagger), and a browsable page at
 * `/docs` (@fastify/swagger-ui, assets served by Brain itself: nothing is fetched from elsewhere).
 * Register before the routes: @fastify/swagger collects them as they are added.
 */
export async function registerApiDocs(app: FastifyInstance, version: string): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Brain',
        version,
        description:
          'Long-term memory for AI assistants: remember, recall by meaning, sessions. Errors are ' +
          '`{"error": {"code", "message", "details"}}`; MCP (Streamable HTTP) is served at `/mcp`.',
      },
      // Every route but health, the docs and the OAuth metadata (each says `security: []`) takes one.
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'An API key (`brain keys create`), BRAIN_API_TOKEN, or a JWT / OAuth access token. Not needed while authentication is off (no key and no token: local callers only).',
          },
        },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'memories', description: 'Remember, recall, list, change and forget memories.' },
        { name: 'sessions', description: "A conversation's working context." },
        { name: 'compatibility', description: 'The routes of the SomaBrain deployment guide.' },
        { name: 'health', description: 'Liveness and readiness.' },
        { name: 'mcp', description: 'The Model Context Protocol endpoint, for MCP clients.' },
        { name: 'admin', description: 'Operating Brain: maintenance mode.' },
        { name: 'metrics', description: 'Prometheus metrics.' },
      ],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
