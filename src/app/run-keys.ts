import os from 'node:os';
import {
  type ApiKeyView,
  apiKeyView,
  type CreateApiKeyInput,
  createApiKey,
} from '../modules/auth/api-keys.js';
import type { GlobalOptions } from '../surfaces/cli/cli-program.js';
import type { KeysRuntime } from '../surfaces/cli/keys-commands.js';
import type { Brain } from './build-brain.js';

const DAY_MS = 86_400_000;

/** Runs one command's work on a Brain opened for it (and closed after). */
export type WithBrain = <T>(global: GlobalOptions, work: (brain: Brain) => Promise<T>) => Promise<T>;

/**
 * Who a CLI command acts as in the audit log: `cli:<os user>`. The CLI has file or database access,
 * so it is trusted; the audit log records which account used it.
 */
export function cliPrincipal(): string {
  let user: string | undefined;
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): fall back to what the shell says.
    user = process.env.USER ?? process.env.USERNAME;
  }
  return `cli:${user || 'unknown'}`;
}

function details(view: ApiKeyView): Record<string, unknown> {
  return { scopes: view.scopes, name: view.name };
}

/**
 * `brain keys` and `brain audit` on the configured store. Every key change is recorded in the audit
 * log before the command answers (the log resolves once the event is stored).
 */
export function keysRuntime(withBrain: WithBrain): KeysRuntime {
  return {
    createKey: (global, request) =>
      withBrain(global, async (brain) => {
        const now = brain.clock.now();
        const input = {
          tenantId: request.tenantId,
          // The schema refuses anything but known scopes: the strings are checked there.
          scopes: request.scopes as CreateApiKeyInput['scopes'],
          ...(request.name !== undefined ? { name: request.name } : {}),
          ...(request.expiresInDays !== undefined
            ? { expiresAt: new Date(now.getTime() + request.expiresInDays * DAY_MS).toISOString() }
            : {}),
        };
        const { key, record } = await createApiKey(brain.storage.stores().apiKeys, input, now);
        const view = apiKeyView(record);
        await brain.audit.record({
          principal: cliPrincipal(),
          tenantId: record.tenantId,
          action: 'key.create',
          target: record.id,
          outcome: 'ok',
          details: details(view),
        });
        return { key, record: view };
      }),
    listKeys: (global, filter) =>
      withBrain(global, async (brain) => (await brain.storage.stores().apiKeys.list(filter)).map(apiKeyView)),
    revokeKey: (global, id) =>
      withBrain(global, async (brain) => {
        const at = brain.clock.now().toISOString();
        const record = await brain.storage.stores().apiKeys.revoke(id, at);
        if (!record) return null;
        const view = apiKeyView(record);
        // A second revoke changes nothing (the first time stays): nothing new to audit.
        const already = record.revokedAt !== at;
        if (!already)
          await brain.audit.record({
            principal: cliPrincipal(),
            tenantId: record.tenantId,
            action: 'key.revoke',
            target: record.id,
            outcome: 'ok',
            details: details(view),
          });
        return { record: view, already };
      }),
    auditEvents: (global, filter) => withBrain(global, (brain) => brain.storage.stores().audit.list(filter)),
  };
}
