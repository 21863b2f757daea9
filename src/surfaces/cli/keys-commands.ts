import { type Command, Option } from 'commander';
import { BrainError, invalidInput } from '../../core/errors.js';
import { AUDIT_OUTCOMES, type AuditEvent, type AuditFilter } from '../../modules/audit/audit-store.js';
import type { ApiKeyView } from '../../modules/auth/api-keys.js';
import { isIsoDateTime } from '../../modules/memory/memory-schemas.js';
import { formatError } from './cli-format.js';
import type { CliIo, GlobalOptions } from './cli-program.js';
import { formatAudit, formatCreatedKey, formatKeys, formatRevoked } from './keys-format.js';

/** What `brain keys create` asks for; the module's schema checks it (tenant, scopes, name). */
export interface NewKeyRequest {
  tenantId: string;
  scopes: string[];
  name?: string | undefined;
  expiresInDays?: number | undefined;
}

/** What the keys and audit commands need from the composition root (src/app/run-keys.ts). */
export interface KeysRuntime {
  /** Makes a key, records `key.create`, and returns the key (its only appearance) and its record. */
  createKey(global: GlobalOptions, request: NewKeyRequest): Promise<{ key: string; record: ApiKeyView }>;
  listKeys(
    global: GlobalOptions,
    filter: { tenantId?: string; includeRevoked: boolean },
  ): Promise<ApiKeyView[]>;
  /** Revokes a key and records `key.revoke`; `already` when it was revoked before; null for an unknown id. */
  revokeKey(global: GlobalOptions, id: string): Promise<{ record: ApiKeyView; already: boolean } | null>;
  auditEvents(global: GlobalOptions, filter: AuditFilter): Promise<AuditEvent[]>;
}

/** What the commands share with the rest of the program (see buildProgram in cli-program.ts). */
export interface CommandKit {
  runtime: KeysRuntime;
  globals(): GlobalOptions;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
  io: CliIo;
  state: { code: number };
}

export const AUDIT_LIMIT = { default: 50, max: 1000 } as const;
const EXPIRY_DAYS_MAX = 3650;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** `--scopes read,write` → ['read', 'write']; the schema refuses unknown and repeated scopes. */
function scopeList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function wholeNumber(field: string, value: string, min: number, max: number, unit = ''): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(Number.isSafeInteger(n) && n >= min && n <= max))
    throw invalidInput(
      field,
      `must be a whole number${unit} from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  return n;
}

/**
 * `--since`/`--until` as UTC ISO text (the store compares times as text): an ISO 8601 time, or a
 * duration back from `now` (`30m`, `24h`, `7d`, `2w`).
 */
export function parseTimeOption(field: string, value: string, now: Date): string {
  if (isIsoDateTime(value)) return new Date(value).toISOString();
  const match = /^(\d+)([smhdw])$/.exec(value.trim());
  const at = match
    ? now.getTime() - Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
    : Number.NaN;
  if (!Number.isFinite(at) || Math.abs(at) > 8.64e15)
    throw invalidInput(
      field,
      `must be an ISO 8601 time (e.g. 2026-01-31T12:00:00Z) or a duration back from now (30m, 24h, 7d, 2w), got ${JSON.stringify(value)}`,
    );
  return new Date(at).toISOString();
}

interface AuditFlags {
  tenant?: string;
  principal?: string;
  action?: string;
  outcome?: AuditFilter['outcome'];
  since?: string;
  until?: string;
  before?: string;
  limit?: string;
}

/** The audit options as a store filter, every bad one refused naming the option and its limit. */
export function auditFilterOf(flags: AuditFlags, now: Date): AuditFilter {
  const filter: AuditFilter = {
    limit:
      flags.limit === undefined ? AUDIT_LIMIT.default : wholeNumber('limit', flags.limit, 1, AUDIT_LIMIT.max),
  };
  if (flags.tenant !== undefined) filter.tenantId = flags.tenant;
  if (flags.principal !== undefined) filter.principal = flags.principal;
  if (flags.action !== undefined) filter.action = flags.action;
  if (flags.outcome !== undefined) filter.outcome = flags.outcome;
  if (flags.before !== undefined) filter.before = flags.before;
  if (flags.since !== undefined) filter.since = parseTimeOption('since', flags.since, now);
  if (flags.until !== undefined) filter.until = parseTimeOption('until', flags.until, now);
  if (filter.since && filter.until && filter.since >= filter.until)
    throw invalidInput('until', `must be after --since (${filter.since}), got ${filter.until}`);
  return filter;
}

/** `brain keys create|list|revoke` and `brain audit`. */
export function registerKeysCommands(program: Command, kit: CommandKit): void {
  const { runtime, globals, print, io, state } = kit;
  const keys = program.command('keys').description('API keys: create, list, revoke (each change is audited)');

  keys
    .command('create')
    .description('create an API key and print it once (only its hash is stored)')
    .requiredOption('--tenant <id>', 'the tenant the key acts in (1-64 of A-Z a-z 0-9 _ -)')
    .requiredOption('--scopes <list>', 'comma-separated: read, write, execute, admin', scopeList)
    .option('--name <text>', 'what the key is for (at most 100 characters)')
    .option(
      '--expires-in-days <n>',
      `refuse the key after this many days, 1..${EXPIRY_DAYS_MAX} (default never)`,
    )
    .option('--json', 'print JSON (the key included)')
    .action(async (flags) => {
      const expiresInDays =
        flags.expiresInDays === undefined
          ? undefined
          : wholeNumber('expires-in-days', flags.expiresInDays, 1, EXPIRY_DAYS_MAX, ' of days');
      const created = await runtime.createKey(globals(), {
        tenantId: flags.tenant,
        scopes: flags.scopes,
        name: flags.name,
        expiresInDays,
      });
      if (flags.json) io.err('the key is shown only this once: store it now (Brain keeps only its hash)');
      print(flags.json, created, () => formatCreatedKey(created.key, created.record));
    });

  keys
    .command('list')
    .description('list API keys, oldest first (never their secret or hash)')
    .option('--tenant <id>', 'only the keys of this tenant')
    .option('--all', 'include revoked keys')
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const list = await runtime.listKeys(globals(), {
        ...(flags.tenant !== undefined ? { tenantId: flags.tenant } : {}),
        includeRevoked: Boolean(flags.all),
      });
      print(flags.json, list, () => formatKeys(list, new Date()));
    });

  keys
    .command('revoke')
    .description('revoke an API key: every replica refuses it within a second')
    .argument('<id>', 'key id (k_…), as `brain keys list` shows it')
    .option('--json', 'print JSON')
    .action(async (id: string, flags) => {
      const result = await runtime.revokeKey(globals(), id);
      if (!result) {
        // Exit 1, not 3: a revoke that finds nothing has not done what it was run for.
        const error = new BrainError(
          'NOT_FOUND',
          `no API key with id ${id}; \`brain keys list --all\` shows every key`,
          { id },
        );
        io.err(
          flags.json
            ? JSON.stringify({ error: { code: error.code, message: error.message, details: error.details } })
            : formatError(error),
        );
        state.code = 1;
        return;
      }
      print(flags.json, result.record, () => formatRevoked(result.record, result.already));
    });

  program
    .command('audit')
    .description('list audit events, newest first: who did what, where, and how it ended')
    .option('--tenant <id>', 'only events of this tenant')
    .option('--principal <id>', 'only events of this principal (key:k_…, jwt:…, token, local, cli:…)')
    .option(
      '--action <name>',
      'an action (memory.forget), or every action under a prefix ending in "." (memory.)',
    )
    .addOption(new Option('--outcome <outcome>', 'only events that ended so').choices([...AUDIT_OUTCOMES]))
    .option('--since <time>', 'events at or after: an ISO 8601 time or a duration back from now (24h, 7d)')
    .option('--until <time>', 'events before: an ISO 8601 time or a duration back from now')
    .option('--before <event id>', 'events older than this one (the next page)')
    .option('--limit <n>', `how many, 1..${AUDIT_LIMIT.max} (default ${AUDIT_LIMIT.default})`)
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const filter = auditFilterOf(flags, new Date());
      const events = await runtime.auditEvents(globals(), filter);
      print(flags.json, events, () => formatAudit(events, filter.limit));
    });
}
