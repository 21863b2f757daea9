import type { MemoryFilter } from '../../modules/memory/memory-filter.js';
import type { Memory, StorageTier } from '../../modules/memory/memory-types.js';
import { isoUtc } from '../sqlite/sqlite-memory-rows.js';

/** The columns every memory read selects, aliased `m`. */
export const PG_MEMORY_COLUMNS = `m.rid, m.id, m.key, m.content, m.type, m.tags, m.metadata, m.importance, m.project,
  m.session_id, m.storage_tier, m.memory_score, m.access_count, m.created_at, m.updated_at, m.accessed_at, m.expires_at`;

export interface PgMemoryRow {
  rid: string;
  id: string;
  key: string | null;
  content: string;
  type: string;
  tags: string[];
  metadata: Record<string, unknown>;
  importance: number;
  project: string | null;
  session_id: string | null;
  storage_tier: StorageTier;
  memory_score: number;
  access_count: number;
  created_at: string;
  updated_at: string;
  accessed_at: string | null;
  expires_at: string | null;
}

export function pgRowToMemory(r: PgMemoryRow): Memory {
  return {
    id: r.id,
    key: r.key,
    content: r.content,
    type: r.type,
    tags: r.tags,
    metadata: r.metadata,
    importance: r.importance,
    project: r.project,
    session: r.session_id,
    storage_tier: r.storage_tier,
    memory_score: r.memory_score,
    access_count: r.access_count,
    created_at: r.created_at,
    updated_at: r.updated_at,
    accessed_at: r.accessed_at,
    expires_at: r.expires_at,
  };
}

export interface PgWhere {
  sql: string;
  params: unknown[];
}

/**
 * The WHERE clause for one tenant's live memories matching a filter, with numbered parameters from
 * `$start`: the same rules as SQLite's liveMemoryWhere, so both engines agree on what is live.
 */
export function pgLiveWhere(tenantId: string, now: string, filter: MemoryFilter = {}, start = 1): PgWhere {
  const params: unknown[] = [];
  const p = (value: unknown) => {
    params.push(value);
    return `$${start + params.length - 1}`;
  };
  const clauses = [
    `m.tenant_id = ${p(tenantId)}`,
    'm.deleted_at IS NULL',
    `(m.expires_at IS NULL OR m.expires_at > ${p(now)})`,
  ];
  if (!filter.include_cold) clauses.push("m.storage_tier <> 'cold'");
  if (filter.project !== undefined) clauses.push(`m.project = ${p(filter.project)}`);
  if (filter.session !== undefined) clauses.push(`m.session_id = ${p(filter.session)}`);
  if (filter.types !== undefined && filter.types.length > 0)
    clauses.push(`m.type = ANY(${p(filter.types)}::text[])`);
  if (filter.tags !== undefined && filter.tags.length > 0)
    clauses.push(`m.tags @> ${p(filter.tags)}::text[]`);
  if (filter.since !== undefined) clauses.push(`m.created_at >= ${p(isoUtc(filter.since))}`);
  if (filter.until !== undefined) clauses.push(`m.created_at < ${p(isoUtc(filter.until))}`);
  return { sql: clauses.join(' AND '), params };
}

/** A vector as pgvector's text form. */
export function vectorLiteral(vector: Float32Array): string {
  return `[${Array.from(vector).join(',')}]`;
}

/** pgvector's text form back to floats. */
export function parseVector(text: string): Float32Array {
  return Float32Array.from(text.slice(1, -1).split(',').map(Number));
}
