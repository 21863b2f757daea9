import type { AuditEvent } from '../../modules/audit/audit-store.js';
import type { ApiKeyView } from '../../modules/auth/api-keys.js';

/** Longest details text in an audit table row; `--json` has them whole. */
const DETAILS_CHARS = 80;

/** Rows of cells as aligned columns, two spaces apart, the last column unpadded. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Whether a key authenticates at `now`: revoked and expired keys are refused. */
export function keyStatus(key: ApiKeyView, now: Date): 'active' | 'revoked' | 'expired' {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && key.expiresAt <= now.toISOString()) return 'expired';
  return 'active';
}

export function formatCreatedKey(key: string, record: ApiKeyView): string {
  const name = record.name ? ` "${record.name}"` : '';
  return [
    `created API key ${record.id}${name} for tenant ${record.tenantId}: scopes ${record.scopes.join(', ')}, expires ${record.expiresAt ?? 'never'}`,
    '',
    `  ${key}`,
    '',
    'Copy it now: it is not shown again. Brain keeps only its SHA-256 hash; a lost key cannot be recovered, only revoked and replaced.',
  ].join('\n');
}

export function formatKeys(keys: ApiKeyView[], now: Date): string {
  if (keys.length === 0) return 'no API keys';
  return table(
    ['ID', 'TENANT', 'SCOPES', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED', 'NAME'],
    keys.map((k) => [
      k.id,
      k.tenantId,
      k.scopes.join(','),
      keyStatus(k, now),
      k.createdAt,
      k.expiresAt ?? 'never',
      k.lastUsedAt ?? 'never',
      k.name ?? '',
    ]),
  );
}

export function formatRevoked(key: ApiKeyView, already: boolean): string {
  return already
    ? `API key ${key.id} (tenant ${key.tenantId}) was already revoked at ${key.revokedAt}`
    : `revoked API key ${key.id} (tenant ${key.tenantId}) at ${key.revokedAt}: every replica refuses it within a second`;
}

function detailsText(details: Record<string, unknown>): string {
  const text = Object.keys(details).length === 0 ? '' : JSON.stringify(details);
  return text.length > DETAILS_CHARS ? `${text.slice(0, DETAILS_CHARS - 1)}…` : text;
}

/** The events as a table, newest first, and how to see the page before when this one is full. */
export function formatAudit(events: AuditEvent[], limit: number): string {
  if (events.length === 0) return 'no audit events';
  const lines = [
    table(
      ['AT', 'OUTCOME', 'ACTION', 'PRINCIPAL', 'TENANT', 'TARGET', 'DETAILS'],
      events.map((e) => [
        e.at,
        e.outcome,
        e.action,
        e.principal,
        e.tenantId,
        e.target ?? '-',
        detailsText(e.details),
      ]),
    ),
  ];
  const last = events.at(-1);
  const more = events.length === limit && last ? `; older ones: --before ${last.id}` : '';
  lines.push(`${events.length} ${events.length === 1 ? 'event' : 'events'}, newest first${more}`);
  return lines.join('\n');
}
