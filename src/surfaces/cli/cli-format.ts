import type { BrainError } from '../../core/errors.js';
import {
  type ForgetResult,
  type ListResult,
  type Memory,
  type RecallResult,
  type RememberResult,
  TEXT_ONLY_REASONS,
} from '../../modules/memory/memory-output.js';

/** Longest content shown per line in lists; `brain get ID` prints it whole. */
const PREVIEW_CHARS = 200;

function preview(content: string, max = PREVIEW_CHARS): string {
  const flat = content.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function tagText(tags: readonly string[]): string {
  return tags.length > 0 ? ` ${tags.map((t) => `#${t}`).join(' ')}` : '';
}

function day(iso: string): string {
  return iso.slice(0, 10);
}

export function formatRemember(result: RememberResult): string {
  const how = {
    created: 'remembered',
    updated: 'updated the memory with this key:',
    duplicate: 'already known as',
  };
  return `${how[result.status]} ${result.id}`;
}

export function formatRecall(result: RecallResult): string {
  const lines: string[] = [];
  const count = result.hits.length;
  const how =
    result.mode === 'hybrid'
      ? `hybrid: text + ${result.vector_search ?? 'exact'} vector search`
      : `text only: ${TEXT_ONLY_REASONS[result.reason ?? 'no-embedder']}`;
  lines.push(`${count} ${count === 1 ? 'memory' : 'memories'} (${how})`);
  result.hits.forEach((hit, i) => {
    lines.push(
      `${i + 1}. ${hit.id}  score ${hit.score.toFixed(3)}  ${hit.type}  ${day(hit.created_at)}${tagText(hit.tags)}`,
    );
    lines.push(`   ${preview(hit.content, 400)}`);
  });
  return lines.join('\n');
}

export function formatMemory(memory: Memory): string {
  const rows: [string, string][] = [
    ['id', memory.id],
    ['type', memory.type],
    ['key', memory.key ?? '-'],
    ['project', memory.project ?? '-'],
    ['session', memory.session ?? '-'],
    ['tags', memory.tags.length > 0 ? memory.tags.join(', ') : '-'],
    ['importance', String(memory.importance)],
    ['tier', memory.storage_tier],
    ['accessed', `${memory.access_count} times, last ${memory.accessed_at ?? 'never'}`],
    ['created', memory.created_at],
    ['updated', memory.updated_at],
    ['expires', memory.expires_at ?? 'never'],
  ];
  if (Object.keys(memory.metadata).length > 0) rows.push(['metadata', JSON.stringify(memory.metadata)]);
  const width = Math.max(...rows.map(([name]) => name.length));
  return [...rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`), '', memory.content].join('\n');
}

export function formatList(result: ListResult, offset: number): string {
  if (result.items.length === 0) return `no memories (total ${result.total})`;
  const lines = result.items.map(
    (m) =>
      `${m.id}  ${day(m.created_at)}  ${m.type.padEnd(10)}  ${preview(m.content, 100)}${tagText(m.tags)}`,
  );
  const last = offset + result.items.length;
  const next = result.next_offset === null ? '' : `; next page: --offset ${result.next_offset}`;
  lines.push(`showing ${offset + 1}-${last} of ${result.total}${next}`);
  return lines.join('\n');
}

export function formatForget(result: ForgetResult): string {
  const how = result.hard ? 'purged' : 'forgot';
  const noun = result.forgotten === 1 ? 'memory' : 'memories';
  const more = result.ids_truncated ? `, and ${result.forgotten - result.ids.length} more` : '';
  const ids = result.ids.length > 0 ? `: ${result.ids.join(', ')}${more}` : '';
  return `${how} ${result.forgotten} ${noun}${ids}`;
}

/** One error as a person reads it: the message, then one line per bad field when there are several. */
export function formatError(error: BrainError): string {
  const issues = error.details.issues ?? [];
  if (error.code === 'INVALID_INPUT' && issues.length > 1) {
    return ['error: invalid input', ...issues.map((i) => `  ${i.field}: ${i.message}`)].join('\n');
  }
  return `error: ${error.message}`;
}
