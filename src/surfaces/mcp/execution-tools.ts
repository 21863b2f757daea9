import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import {
  type ExecutionView,
  executeShape,
  executionIdSchema,
  executionSchema,
} from '../../modules/execution/execution-schemas.js';
import type { SurfaceContext } from '../brain-services.js';
import { toolScope } from './tool-access.js';
import { runTool } from './tool-result.js';

/** Output shown to the model, at most this many characters per stream (the structured result has all). */
const SHOWN = 20_000;

function shown(label: string, text: string, truncated: boolean): string {
  if (text.length === 0) return '';
  const cut =
    text.length > SHOWN ? `${text.slice(0, SHOWN)}\n[… ${text.length - SHOWN} more characters]` : text;
  return `\n${label}${truncated ? ' (cut at the output limit)' : ''}:\n${cut}`;
}

/** One execution as text a model reads: how it ended, its value, its output. */
export function formatExecution(e: ExecutionView): string {
  const facts = [
    e.exit_code !== null ? `exit ${e.exit_code}` : null,
    e.wall_ms !== null ? `${e.wall_ms} ms` : null,
    e.cpu_time_ms !== null ? `CPU ${e.cpu_time_ms} ms` : null,
  ].filter((f) => f !== null);
  const head =
    e.status === 'queued' || e.status === 'running'
      ? `${e.id} is ${e.status}: call get_execution with its id for the result.`
      : `${e.id} ${e.status}${facts.length > 0 ? ` (${facts.join(', ')})` : ''}.`;
  const files = e.output_files.length > 0 ? `\nFiles: ${e.output_files.map((f) => f.name).join(', ')}` : '';
  return (
    head +
    (e.error ? `\nError: ${e.error}` : '') +
    (e.result !== null ? `\nValue: ${e.result}` : '') +
    shown('stdout', e.stdout, e.stdout_truncated) +
    shown('stderr', e.stderr, e.stderr_truncated) +
    files
  );
}

/** Registers `execute` and `get_execution` on `server`. */
export function registerExecutionTools(server: McpServer, ctx: SurfaceContext, logger?: Logger): void {
  const opts = (tool: string) => ({ tool, logger, observe: ctx.observeTool });
  const { executions } = ctx.services;
  server.registerTool(
    'execute',
    {
      title: 'Run Python',
      description:
        'Run Python 3 in a sandbox (no network, no host files). Returns stdout, stderr, the last ' +
        'expression, exit code, times. wait:false queues it: poll get_execution.',
      inputSchema: z.object(executeShape(executions.maxTimeoutMs)).strict(),
      outputSchema: executionSchema,
      annotations: {
        readOnlyHint: false,
        idempotentHint: false,
        destructiveHint: false,
        openWorldHint: false,
      },
    },
    (args, extra) =>
      runTool(
        opts('execute'),
        async () => executions.execute(await toolScope(ctx, extra, 'execute', 'execution.submit'), args),
        formatExecution,
      ),
  );
  server.registerTool(
    'get_execution',
    {
      title: 'Get execution',
      description:
        'An execution by id (from execute): its status and, once done, its output. cancel:true stops it.',
      inputSchema: z
        .object({
          id: executionIdSchema.describe('exe_… from execute.'),
          cancel: z.boolean({ error: 'must be true or false' }).optional().describe('Stop it.'),
        })
        .strict(),
      outputSchema: executionSchema,
      annotations: {
        readOnlyHint: false,
        idempotentHint: true,
        destructiveHint: false,
        openWorldHint: false,
      },
    },
    (args, extra) =>
      runTool(
        opts('get_execution'),
        async () => {
          const scope = await toolScope(
            ctx,
            extra,
            'execute',
            args.cancel ? 'execution.cancel' : 'execution.get',
          );
          return args.cancel
            ? executions.cancel(scope, { id: args.id })
            : executions.get(scope, { id: args.id });
        },
        formatExecution,
      ),
  );
}
