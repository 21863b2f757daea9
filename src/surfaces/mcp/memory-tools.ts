import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import {
  forgetShape,
  getShape,
  listShape,
  MEMORY_LIMITS,
  recallShape,
  rememberShape,
  updateShape,
} from '../../modules/memory/memory-schemas.js';
import {
  type ListResult,
  type Memory,
  type RecallResult,
  TEXT_ONLY_REASONS,
} from '../../modules/memory/memory-types.js';
import type { SurfaceContext } from '../brain-services.js';
import { runTool, summaryWithJson, type ToolCallOptions } from './tool-result.js';

// Output schemas are loose objects: a field added to a service result later must not make clients that
// validate structuredContent against an older schema reject the result.

const memoryOutput = z.looseObject({
  id: z.string(),
  key: z.string().nullable(),
  content: z.string(),
  type: z.string(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  importance: z.number(),
  project: z.string().nullable(),
  session: z.string().nullable(),
  storage_tier: z.enum(['hot', 'warm', 'cold']),
  memory_score: z.number(),
  access_count: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
  accessed_at: z.string().nullable(),
  expires_at: z.string().nullable(),
});

const rememberOutput = z.looseObject({
  id: z.string(),
  status: z.enum(['created', 'updated', 'duplicate']),
});

const recallHitOutput = z.looseObject({
  id: z.string(),
  content: z.string(),
  type: z.string(),
  tags: z.array(z.string()),
  key: z.string().nullable(),
  project: z.string().nullable(),
  session: z.string().nullable(),
  importance: z.number(),
  created_at: z.string(),
  score: z.number(),
  signals: z.looseObject({
    text_rank: z.number().nullable(),
    text_score: z.number().nullable(),
    vector_rank: z.number().nullable(),
    vector_similarity: z.number().nullable(),
    relevance: z.number(),
    recency: z.number(),
    importance: z.number(),
    access: z.number(),
  }),
});

const recallOutput = z.looseObject({
  mode: z.enum(['hybrid', 'text-only']),
  reason: z.enum(['no-embedder', 'embedder-failed', 'embedder-unavailable', 'no-query-vector']).optional(),
  detail: z.string().optional(),
  vector_search: z.enum(['exact', 'approximate', 'none']).optional(),
  hits: z.array(recallHitOutput),
});

const listOutput = z.looseObject({
  items: z.array(memoryOutput),
  total: z.number(),
  next_offset: z.number().nullable(),
});

const forgetOutput = z.looseObject({
  forgotten: z.number(),
  ids: z.array(z.string()),
  ids_truncated: z.boolean(),
  hard: z.boolean(),
});

const KiB = (bytes: number) => `${bytes / 1024} KiB`;
/** The limits a schema cannot state (bytes of UTF-8, depth), said once per writing tool. */
const LIMITS_TEXT =
  `Limits: content ${KiB(MEMORY_LIMITS.contentBytes)}, metadata ${KiB(MEMORY_LIMITS.metadataBytes)} ` +
  `and ${MEMORY_LIMITS.metadataDepth} levels.`;

/** Indents every line after the first so a multi-line memory stays inside its numbered list item. */
function indentContinuation(text: string, indent: string): string {
  return text.replace(/\n/g, `\n${indent}`);
}

/** The text form of a recall result: one numbered line per hit with its id, type, score and content. */
export function formatRecall(result: RecallResult): string {
  const how =
    result.mode === 'hybrid'
      ? 'meaning + keywords'
      : `keywords only: ${TEXT_ONLY_REASONS[result.reason ?? 'no-embedder']}`;
  if (result.hits.length === 0) {
    return `No memories matched (search by ${how}). Try other words or fewer filters; otherwise nothing is stored about this yet.`;
  }
  const lines = result.hits.map((hit, i) => {
    const tags = hit.tags.length > 0 ? `, tags: ${hit.tags.join(', ')}` : '';
    return `${i + 1}. [${hit.id}] (${hit.type}, score ${hit.score.toFixed(2)}${tags}) ${indentContinuation(hit.content, '   ')}`;
  });
  const noun = result.hits.length === 1 ? 'memory' : 'memories';
  return `Found ${result.hits.length} ${noun} (search by ${how}), best first:\n${lines.join('\n')}`;
}

function preview(content: string): string {
  const line = content.replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function formatMemory(verb: string, memory: Memory): string {
  return summaryWithJson(`${verb} ${memory.id} (${memory.type}): ${preview(memory.content)}`, memory);
}

function formatList(result: ListResult): string {
  const next = result.next_offset === null ? 'no more pages' : `next page: offset ${result.next_offset}`;
  return summaryWithJson(`Showing ${result.items.length} of ${result.total} memories (${next}).`, result);
}

const READ_ONLY = { readOnlyHint: true, openWorldHint: false };
const CHANGES = { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false };

/** What each tool registration needs: the server, the context, and the tool-call options. */
interface ToolDeps {
  server: McpServer;
  ctx: SurfaceContext;
  opts: (tool: string) => ToolCallOptions;
}

function registerRemember({ server, ctx, opts }: ToolDeps): void {
  server.registerTool(
    'remember',
    {
      title: 'Remember',
      description:
        'Store one durable fact, preference, decision or instruction per call. An existing key gets the new ' +
        `content and the fields given; the rest stay. ${LIMITS_TEXT} Returns {id, status}.`,
      inputSchema: z.object(rememberShape).strict(),
      outputSchema: rememberOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    (args) =>
      runTool(
        opts('remember'),
        () => ctx.services.memory.remember(ctx.scope, args),
        (r) => summaryWithJson(`Remembered as ${r.id} (${r.status}).`, r),
      ),
  );
}

function registerRecall({ server, ctx, opts }: ToolDeps): void {
  server.registerTool(
    'recall',
    {
      title: 'Recall',
      description:
        'Search memory by meaning and keywords; call it before answering anything that may depend on earlier ' +
        'conversations. Returns the best k hits with id, content, score 0..1 and why they matched. All filters ' +
        'given must match.',
      inputSchema: z.object(recallShape).strict(),
      outputSchema: recallOutput,
      // recall counts accesses (a write inside Brain), but nothing the caller sees changes.
      annotations: READ_ONLY,
    },
    (args) => runTool(opts('recall'), () => ctx.services.memory.recall(ctx.scope, args), formatRecall),
  );
}

function registerGetMemory({ server, ctx, opts }: ToolDeps): void {
  server.registerTool(
    'get_memory',
    {
      title: 'Get memory',
      description: 'Read one memory in full by its id. NOT_FOUND when it is unknown, forgotten or expired.',
      inputSchema: z.object(getShape).strict(),
      outputSchema: memoryOutput,
      annotations: READ_ONLY,
    },
    (args) =>
      runTool(
        opts('get_memory'),
        () => ctx.services.memory.get(ctx.scope, args),
        (m) => formatMemory('Memory', m),
      ),
  );
}

function registerListMemories({ server, ctx, opts }: ToolDeps): void {
  server.registerTool(
    'list_memories',
    {
      title: 'List memories',
      description:
        'Browse memories without a query, newest first, e.g. to find ids. Returns {items, total, next_offset}.',
      inputSchema: z.object(listShape).strict(),
      outputSchema: listOutput,
      annotations: READ_ONLY,
    },
    (args) => runTool(opts('list_memories'), () => ctx.services.memory.list(ctx.scope, args), formatList),
  );
}

function registerUpdateMemory({ server, ctx, opts }: ToolDeps): void {
  server.registerTool(
    'update_memory',
    {
      title: 'Update memory',
      description:
        'Fix a wrong or outdated memory, picked by id or key: give only the fields to change. ' +
        `${LIMITS_TEXT} Returns the memory.`,
      inputSchema: z.object(updateShape).strict(),
      outputSchema: memoryOutput,
      annotations: CHANGES,
    },
    (args) =>
      runTool(
        opts('update_memory'),
        () => ctx.services.memory.update(ctx.scope, args),
        (m) => formatMemory('Updated', m),
      ),
  );
}

function registerForget({ server, ctx, opts }: ToolDeps): void {
  server.registerTool(
    'forget',
    {
      title: 'Forget',
      description:
        'Forget memories by id, key, filter (all its conditions must match) or all: true. Recoverable unless ' +
        'hard. Returns {forgotten, ids, hard}.',
      inputSchema: z.object(forgetShape).strict(),
      outputSchema: forgetOutput,
      annotations: CHANGES,
    },
    (args) =>
      runTool(
        opts('forget'),
        () => ctx.services.memory.forget(ctx.scope, args),
        (r) => {
          const what = `${r.forgotten} ${r.forgotten === 1 ? 'memory' : 'memories'}`;
          return summaryWithJson(`Forgot ${what} (${r.hard ? 'purged for good' : 'recoverable'}).`, r);
        },
      ),
  );
}

/**
 * Registers remember, recall, get_memory, list_memories, update_memory and forget on `server`. Input
 * schemas are the memory module's shapes as strict objects (an unknown argument is an error, not silently
 * dropped); the service re-validates with the full schemas, including rules across fields.
 */
export function registerMemoryTools(server: McpServer, ctx: SurfaceContext, logger?: Logger): void {
  const deps: ToolDeps = { server, ctx, opts: (tool) => ({ tool, logger }) };
  registerRemember(deps);
  registerRecall(deps);
  registerGetMemory(deps);
  registerListMemories(deps);
  registerUpdateMemory(deps);
  registerForget(deps);
}
