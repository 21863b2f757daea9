/**
 * What a principal may do. `read`: recall, get, list, init; `write`: remember, update, forget, sessions;
 * `execute`: run code in the sandbox; `admin`: keys, maintenance, metrics, audit. Scopes do not imply
 * one another: a key for writing only cannot read.
 */
export const SCOPES = ['read', 'write', 'execute', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (SCOPES as readonly string[]).includes(value);
}
