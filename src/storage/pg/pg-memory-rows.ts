import type { MemoryFilter } from '../../modules/memory/memory-filter.js';
import type { Memory, StorageTier } from '../../modules/memory/memory-types.js';
import { isoUtc } from '../sqlite/sqlite-memory-rows.js';

/**
 * What every memory read selects from: a memory (`m`) and its row in memory_tiers (`mt`). A memory has no
 * tier row until a rebalance writes one; until then it is hot with the default score. The tier columns
 * live in their own narrow table so that a rebalance rewrites small rows, not whole memories with their
 * ten indexes (migration 12).
 */
export const PG_MEMORY_FROM = 'memories m LEFT JOIN memory_tiers mt ON mt.rid = m.rid';

/** The columns every memory read selects, from PG_MEMORY_FROM. */
export const PG_MEMORY_COLUMNS = `m.rid, m.id, m.key, m.content, m.type, m.tags, m.metadata, m.importance, m.project,
  m.session_id, coalesce(mt.storage_tier, 'hot') AS storage_tier, coalesce(mt.memory_score, 0.5) AS memory_score,
  m.access_count, m.created_at, m.updated_at, m.accessed_at, m.expires_at, m.valid_from, m.valid_to, m.superseded_by`;

/** Not cold: true of a memory `m` with no tier row, as of one whose row says hot or warm. */
export const PG_NOT_COLD =
  "NOT EXISTS (SELECT 1 FROM memory_tiers c WHERE c.rid = m.rid AND c.storage_tier = 'cold')";

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
  valid_from: string | null;
  valid_to: string | null;
  superseded_by: string | null;
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
    valid_from: r.valid_from,
    valid_to: r.valid_to,
    superseded_by: r.superseded_by,
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
  if (!filter.include_cold) clauses.push(PG_NOT_COLD);
  if (filter.valid_at !== undefined) {
    const at = p(isoUtc(filter.valid_at));
    clauses.push(
      `(m.valid_from IS NULL OR m.valid_from <= ${at})`,
      `(m.valid_to IS NULL OR m.valid_to > ${at})`,
    );
    // A superseded fact stays while the validity its supersession gave it lasts (a statement that takes
    // over in the future leaves the old one until then); one whose validity was left open leaves now.
    if (filter.as_of === undefined) clauses.push('(m.superseded_by IS NULL OR m.valid_to IS NOT NULL)');
  }
  if (filter.as_of !== undefined) clauses.push(`m.created_at <= ${p(isoUtc(filter.as_of))}`);
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

/**
 * A vector in pgvector's binary form (what `vector_recv` reads): int16 dimensions, int16 zero, then the
 * floats big-endian. Sent as a Buffer, pg passes it in binary: exact, and no float is formatted as text
 * (formatting 256 floats cost ~85 µs a vector, most of a batched write's time in Node).
 */
export function vectorBinary(vector: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(4 + vector.length * 4);
  writeVector(out, vector, 0);
  return out;
}

/** Writes one vector in `vector_recv`'s form at `at`; returns where the next byte goes. */
function writeVector(out: Buffer, vector: Float32Array, at: number): number {
  out.writeInt16BE(vector.length, at);
  out.writeInt16BE(0, at + 2);
  let next = at + 4;
  for (let i = 0; i < vector.length; i++, next += 4) out.writeFloatBE(vector[i] as number, next);
  return next;
}

/**
 * A `vector[]` in PostgreSQL's binary array form (no nulls); the element type's oid is pgvector's, which
 * differs between databases, hence the parameter.
 */
export function vectorArrayBinary(vectorOid: number, vectors: readonly Float32Array[]): Buffer {
  return arrayBinary(
    vectorOid,
    vectors,
    (v) => 4 + v.length * 4,
    (out, v, at) => writeVector(out, v, at) - at,
  );
}

/** Built-in type oids (fixed in every database), for the binary arrays below. */
const TEXT_OID = 25;
const INT4_OID = 23;
const INT8_OID = 20;
const FLOAT8_OID = 701;

/**
 * A `text[]` in binary form (nulls allowed). A large plan's arrays sent so cost a third of their text
 * form (no quoting in Node, no parsing of a literal in PostgreSQL): ~100 ms for 98,000 rows' worth.
 */
export function textArrayBinary(values: readonly (string | null)[]): Buffer {
  return arrayBinary(
    TEXT_OID,
    values,
    (v) => Buffer.byteLength(v, 'utf8'),
    (out, v, at) => out.write(v, at, 'utf8'),
  );
}

/** A `float8[]` in binary form (nulls allowed). */
export function float8ArrayBinary(values: readonly (number | null)[]): Buffer {
  return arrayBinary(
    FLOAT8_OID,
    values,
    () => 8,
    (out, v, at) => out.writeDoubleBE(v, at) - at,
  );
}

/** An `int4[]` in binary form (nulls allowed). */
export function int4ArrayBinary(values: readonly (number | null)[]): Buffer {
  return arrayBinary(
    INT4_OID,
    values,
    () => 4,
    (out, v, at) => out.writeInt32BE(v, at) - at,
  );
}

/** An `int8[]` in binary form (nulls allowed) of integers from 0 to 2^53 (what a JS number holds exactly). */
export function int8ArrayBinary(values: readonly (number | null)[]): Buffer {
  return arrayBinary(
    INT8_OID,
    values,
    () => 8,
    (out, v, at) => {
      if (!Number.isSafeInteger(v) || v < 0)
        throw new RangeError(`int8ArrayBinary: ${v} is not a safe integer ≥ 0`);
      out.writeUInt32BE(Math.floor(v / 2 ** 32), at);
      out.writeUInt32BE(v >>> 0, at + 4);
      return 8;
    },
  );
}

/**
 * A one-dimensional array in array_recv's form: a header (one dimension, the null flag, the element
 * type's oid, the length, lower bound 1), then each item's length (-1 for null) and bytes. `sizeOf` is
 * only for the allocation (at least the bytes `write` writes); `write` returns how many it wrote.
 */
function arrayBinary<T>(
  oid: number,
  items: readonly (T | null)[],
  sizeOf: (item: T) => number,
  write: (out: Buffer, item: T, at: number) => number,
): Buffer {
  let size = 20;
  let nulls = 0;
  for (const x of items) {
    if (x === null) nulls = 1;
    size += 4 + (x === null ? 0 : sizeOf(x));
  }
  const out = Buffer.allocUnsafe(size);
  out.writeInt32BE(1, 0); // dimensions
  out.writeInt32BE(nulls, 4);
  out.writeUInt32BE(oid, 8);
  out.writeInt32BE(items.length, 12);
  out.writeInt32BE(1, 16); // lower bound
  let at = 20;
  for (const item of items) {
    const length = item === null ? -1 : write(out, item, at + 4);
    out.writeInt32BE(length, at);
    at += 4 + Math.max(0, length);
  }
  return out.subarray(0, at);
}

/** pgvector's text form back to floats. */
export function parseVector(text: string): Float32Array {
  return Float32Array.from(text.slice(1, -1).split(',').map(Number));
}
