import type { RequestScope } from '../core/scope.js';
import type { MemoryService } from '../modules/memory/memory-service.js';
import type { SessionService } from '../modules/sessions/session-service.js';

/** What every face (MCP, HTTP, CLI) is given: the services, and the scope to act in. */
export interface BrainServices {
  memory: MemoryService;
  sessions: SessionService;
}

export interface SurfaceContext {
  services: BrainServices;
  /** The scope calls act in while no authentication is configured: the default tenant. */
  scope: RequestScope;
  version: string;
  /** Told of every MCP tool call's outcome and duration (metrics); none: nobody is told. */
  observeTool?: ToolObserver | undefined;
}

/** Receives each tool call: the tool, whether it succeeded, and how long it took in seconds. */
export type ToolObserver = (tool: string, status: 'ok' | 'error', seconds: number) => void;
