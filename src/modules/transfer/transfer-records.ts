import type { AuditEvent } from '../audit/audit-store.js';
import type { ApiKeyView } from '../auth/api-keys.js';
import type { MemoryVersion } from '../memory/memory-store.js';

/**
 * One memory row as a store holds it, every column, engine-neutral: what `brain store copy`, `brain
 * export` and `brain import` move. The storage port that reads and writes these is StoreCopy
 * (src/storage/storage.ts); the shapes live here, with the module that defines the export format.
 */
export interface StoredMemory {
  id: string;
  tenant_id: string;
  project: string | null;
  session_id: string | null;
  key: string | null;
  content: string;
  content_hash: string;
  type: string;
  tags: string[];
  metadata: Record<string, unknown>;
  importance: number;
  storage_tier: 'hot' | 'warm' | 'cold';
  memory_score: number;
  access_count: number;
  created_at: string;
  updated_at: string;
  accessed_at: string | null;
  expires_at: string | null;
  valid_from: string | null;
  valid_to: string | null;
  superseded_by: string | null;
  deleted_at: string | null;
  /** The search tokens as stored (the same function makes them on every engine). */
  search_text: string;
  context_text: string;
  speaker_text: string;
  embedding_model: string | null;
  /** The stored vector (SQLite keeps int8: it comes out dequantised, same direction). */
  embedding: Float32Array | null;
  /** Waiting in the embedding queue. */
  queued: boolean;
}

/** One replaced state of a memory (memory_versions), every column: what copy, export and import move. */
export interface StoredVersion extends MemoryVersion {
  tenant_id: string;
  memory_id: string;
}

/** The position of a version in a copy's order: (tenant_id, memory_id, version). */
export type VersionKey = Pick<StoredVersion, 'tenant_id' | 'memory_id' | 'version'>;

export interface StoredSession {
  tenant_id: string;
  id: string;
  project: string | null;
  client: string | null;
  created_at: string;
  last_seen_at: string;
}

/** An API key as exported: its metadata, never its hash (a copy of an export gives no working key). */
export type StoredApiKey = ApiKeyView;

export type StoredAuditEvent = AuditEvent;

/** Which rows an export reads: one tenant's, one project's (memories and sessions), or all. */
export interface TransferFilter {
  tenantId?: string | undefined;
  project?: string | undefined;
}
