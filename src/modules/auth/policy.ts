import { BrainError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Principal } from './principal.js';
import type { Scope } from './scopes.js';

/** One decision: may this principal do this action, needing this scope, in this tenant? */
export interface AccessRequest {
  principal: Principal;
  scope: Scope;
  /** e.g. `memory.recall`, `admin.maintenance`. */
  action: string;
  /** The tenant acted in (a principal only ever acts in its own). */
  tenantId: string;
}

/** An Open Policy Agent decision endpoint (its data API), asked after the built-in check allows. */
export interface OpaSettings {
  endpoint: string;
  timeoutMs: number;
  /** When OPA does not answer: refuse (true) or let the built-in check decide (false). */
  failClosed: boolean;
}

/**
 * Authorisation: the built-in check (the principal holds the scope, and acts in its own tenant), then,
 * when configured, OPA's data API (`POST <endpoint>` with `{input}`, allowed when `result` is true or
 * `{allow: true}`). Refusals are FORBIDDEN naming what is missing; OPA unreachable with fail-closed is
 * UNAVAILABLE (503, retry), so a policy outage never opens the server.
 */
export class Policy {
  readonly #opa: OpaSettings | null;
  readonly #logger: Logger;

  constructor(options: { opa?: OpaSettings | null; logger: Logger }) {
    this.#opa = options.opa ?? null;
    this.#logger = options.logger;
  }

  async authorize(request: AccessRequest): Promise<void> {
    const { principal, scope, action, tenantId } = request;
    if (!principal.scopes.has(scope)) {
      const held = [...principal.scopes].join(', ') || 'none';
      throw new BrainError('FORBIDDEN', `${action} needs the ${scope} scope; this credential has ${held}`, {
        required_scope: scope,
        scopes: [...principal.scopes],
      });
    }
    if (tenantId !== principal.tenantId)
      throw new BrainError('FORBIDDEN', `this credential acts in tenant ${principal.tenantId} only`, {
        tenant: principal.tenantId,
      });
    if (this.#opa) await this.#askOpa(this.#opa, request);
  }

  async #askOpa(opa: OpaSettings, request: AccessRequest): Promise<void> {
    const input = {
      principal: {
        id: request.principal.id,
        kind: request.principal.kind,
        scopes: [...request.principal.scopes],
      },
      tenant: request.tenantId,
      action: request.action,
      scope: request.scope,
    };
    let allowed: boolean;
    try {
      const response = await fetch(opa.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input }),
        signal: AbortSignal.timeout(opa.timeoutMs),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = (await response.json()) as { result?: unknown };
      const result = body.result;
      allowed =
        result === true ||
        (typeof result === 'object' && result !== null && (result as { allow?: unknown }).allow === true);
    } catch (error) {
      this.#logger.warn({ err: error, endpoint: opa.endpoint }, 'OPA did not answer a policy decision');
      if (!opa.failClosed) return;
      throw new BrainError(
        'UNAVAILABLE',
        'the policy service does not answer; nothing was done, retry shortly',
        {
          retry_after_seconds: 5,
        },
      );
    }
    if (!allowed)
      throw new BrainError('FORBIDDEN', `policy does not allow ${request.action} for this credential`, {
        action: request.action,
      });
  }
}
