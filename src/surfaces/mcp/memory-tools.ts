import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import {
  forgetResultSchema,
  historyResultSchema,
  type ListResult,
  listResultSchema,
  type Memory,
  memorySchema,
  type RecallResult,
  recallResultSchema,
  rememberResultSchema,
  TEXT_ONLY_REASONS,
} from '../../modules/memory/memory-output.js';
import {
  forgetShape,
  getShape,
  historyShape,
  listShape,
  MEMORY_LIMITS,
  recallShape,
  rememberShape,
  SUPERSEDES_TEXT,
  updateShape,
} from '../../modules/memory/memory-schemas.js';
import type { SurfaceContext } from '../brain-services.js';
import { formatEpisodeHits } from './episode-tools.js';
import { toolScope } from './tool-access.js';
import { runTool, summaryWithJson, type ToolCallOptions } from './tool-result.js';

const KiB = (bytes: number) => `${bytes / 1024} KiB`;
/** The limits a schema cannot state (bytes of UTF-8, depth), said once per writing tool. */
/**
 * remember's arguments the tool leaves out to stay within its definition budget (1,400 bytes a model reads
 * in every conversation): a fact's validity, which `update_memory` sets over MCP and REST takes directly.
 */
const REST_ONLY_REMEMBER = { valid_from: true, valid_to: true } as const;

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
    return `No memories matched (search by ${how}). Try other words or fewer filters; otherwise nothing is stored about this yet.${formatEpisodeHits(result.episodes)}`;
  }
  const lines = result.hits.map((hit, i) => {
    const tags = hit.tags.length > 0 ? `, tags: ${hit.tags.join(', ')}` : '';
    return `${i + 1}. [${hit.id}] (${hit.type}, score ${hit.score.toFixed(2)}${tags}) ${indentContinuation(hit.content, '   ')}`;
  });
  const noun = result.hits.length === 1 ? 'memory' : 'memories';
  return `Found ${result.hits.length} ${noun} (search by ${how}), best first:\n${lines.join('\n')}${formatEpisodeHits(result.episodes)}`;
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
        'Store one durable fact, preference, decision or instruction per call. A known key gets the new ' +
        `content and given fields; others stay. ${LIMITS_TEXT}`,
      // supersedes without its id pattern here (the service checks it, naming the field): what a model
      // reads of each tool is kept small.
      inputSchema: z
        .object({ ...rememberShape, supersedes: z.string().optional().describe(SUPERSEDES_TEXT) })
        .omit(REST_ONLY_REMEMBER)
        .strict(),
      outputSchema: rememberResultSchema,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    (args, extra) =>
      runTool(
        opts('remember'),
        async () =>
          ctx.services.memory.remember(await toolScope(ctx, extra, 'write', 'memory.remember'), args),
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
        'Search memory by meaning and keywords before answering what may depend on past conversations. ' +
        'Returns the best k hits (id, content, score 0..1, why). Filters must all match.',
      inputSchema: z.object(recallShape).strict(),
      outputSchema: recallResultSchema,
      // recall counts accesses (a write inside Brain), but nothing the caller sees changes.
      annotations: READ_ONLY,
    },
    (args, extra) =>
      runTool(
        opts('recall'),
        async () => ctx.services.memory.recall(await toolScope(ctx, extra, 'read', 'memory.recall'), args),
        formatRecall,
      ),
  );
}

function registerGetMemory({ server, ctx, opts }: ToolDeps): void {
  server.registerTool(
    'get_memory',
    {
      title: 'Get memory',
      description: 'Read one memory in full by its id. NOT_FOUND when it is unknown, forgotten or expired.',
      inputSchema: z.object(getShape).strict(),
      outputSchema: memorySchema,
      annotations: READ_ONLY,
    },
    (args, extra) =>
      runTool(
        opts('get_memory'),
        async () => ctx.services.memory.get(await toolScope(ctx, extra, 'read', 'memory.get'), args),
        (m) => formatMemory('Memory', m),
      ),
  );
}

function registerMemoryHistory({ server, ctx, opts }: ToolDeps): void {
  server.registerTool(
    'memory_history',
    {
      title: 'Memory history',
      description:
        'Every version of one memory, oldest first: what updates and same-key writes replaced, then the current one.',
      inputSchema: z.object(historyShape).strict(),
      outputSchema: historyResultSchema,
      annotations: READ_ONLY,
    },
    (args, extra) =>
      runTool(
        opts('memory_history'),
        async () => ctx.services.memory.history(await toolScope(ctx, extra, 'read', 'memory.history'), args),
        (h) =>
          summaryWithJson(
            `${h.id}: ${h.versions.length} version${h.versions.length === 1 ? '' : 's'}, now: ${preview(h.versions.at(-1)?.content ?? '')}`,
            h,
          ),
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
      outputSchema: listResultSchema,
      annotations: READ_ONLY,
    },
    (args, extra) =>
      runTool(
        opts('list_memories'),
        async () => ctx.services.memory.list(await toolScope(ctx, extra, 'read', 'memory.list'), args),
        formatList,
      ),
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
      outputSchema: memorySchema,
      annotations: CHANGES,
    },
    (args, extra) =>
      runTool(
        opts('update_memory'),
        async () => ctx.services.memory.update(await toolScope(ctx, extra, 'write', 'memory.update'), args),
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
      outputSchema: forgetResultSchema,
      annotations: CHANGES,
    },
    (args, extra) =>
      runTool(
        opts('forget'),
        async () => ctx.services.memory.forget(await toolScope(ctx, extra, 'write', 'memory.forget'), args),
        (r) => {
          const what = `${r.forgotten} ${r.forgotten === 1 ? 'memory' : 'memories'}`;
          return summaryWithJson(`Forgot ${what} (${r.hard ? 'purged for good' : 'recoverable'}).`, r);
        },
      ),
  );
}

/**
 * Registers remember, recall, get_memory, memory_history, list_memories, update_memory and forget on `server`. Input
 * schemas are the memory module's shapes as strict objects (an unknown argument is an error, not silently
 * dropped); the service re-validates with the full schemas, including rules across fields.
 */
export function registerMemoryTools(server: McpServer, ctx: SurfaceContext, logger?: Logger): void {
  const deps: ToolDeps = { server, ctx, opts: (tool) => ({ tool, logger, observe: ctx.observeTool }) };
  registerRemember(deps);
  registerRecall(deps);
  registerGetMemory(deps);
  registerMemoryHistory(deps);
  registerListMemories(deps);
  registerUpdateMemory(deps);
  registerForget(deps);
}
