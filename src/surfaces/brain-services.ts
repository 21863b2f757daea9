import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { RequestScope } from '../core/scope.js';
import type { Scope } from '../modules/auth/scopes.js';
import type { EpisodeService } from '../modules/episodes/episode-service.js';
import type { ExecutionService } from '../modules/execution/execution-service.js';
import type { MemoryService } from '../modules/memory/memory-service.js';
import type { TierService } from '../modules/memory/tier-service.js';
import type { SessionService } from '../modules/sessions/session-service.js';

/** What every face (MCP, HTTP, CLI) is given: the services, and the scope to act in. */
export interface BrainServices {
  memory: MemoryService;
  sessions: SessionService;
  /** Tiers and decay: rebalance, explain, the hot tier's utilisation. */
  tiers: TierService;
  /** The episodic buffer: record_episode, the buffer, session end and its consolidation. */
  episodes: EpisodeService;
  /** Sandboxed Python: execute, poll, cancel, list (the workers run in this process or others). */
  executions: ExecutionService;
}

export interface SurfaceContext {
  services: BrainServices;
  /** The scope calls act in while no authentication is configured: the default tenant. */
  scope: RequestScope;
  version: string;
  /** Told of every MCP tool call's outcome and duration (metrics); none: nobody is told. */
  observeTool?: ToolObserver | undefined;
  /**
   * Checks one MCP tool call's credentials (HTTP): the scope it needs, the policy, the daily write
   * limit; returns the scope to act in, or throws UNAUTHENTICATED, FORBIDDEN or RATE_LIMITED. None
   * (stdio): every call acts in {@link scope}.
   */
  authorize?: ToolAuthorizer | undefined;
}

/** What one tool call needs: a scope, the action it is authorised and audited as, memories it writes. */
export interface ToolNeed {
  scope: Scope;
  action: string;
  writes: number;
}

export type ToolAuthorizer = (authInfo: AuthInfo | undefined, need: ToolNeed) => Promise<RequestScope>;

/** Receives each tool call: the tool, whether it succeeded, and how long it took in seconds. */
export type ToolObserver = (tool: string, status: 'ok' | 'error', seconds: number) => void;
