import { z } from 'zod';
import { isWellFormedText, MALFORMED_TEXT_MESSAGE } from '../../core/validation.js';
import { AUDIT_OUTCOMES } from '../audit/audit-store.js';
import { createApiKeySchema } from '../auth/api-keys.js';
import { SCOPES } from '../auth/scopes.js';
import { contentHash, legacyContentHash } from '../memory/content-hash.js';
import {
  importanceSchema,
  isoDateSchema,
  keySchema,
  MEMORY_LIMITS,
  memoryIdSchema,
  metadataSchema,
  projectSchema,
  sessionSchema,
  tagsSchema,
  typeSchema,
} from '../memory/memory-schemas.js';
import type {
  StoredApiKey,
  StoredAuditEvent,
  StoredMemory,
  StoredSession,
  StoredVersion,
} from './transfer-records.js';
import { vectorFromBase64, vectorToBase64 } from './vector-base64.js';

/**
 * The Brain export format: JSON lines. The first line is the header
 * `{"kind":"brain-export","version":1,…}`, the last `{"kind":"brain-export-end","counts":{…}}` (a file
 * without it was cut short), and every line between is one record `{"kind":"memory",…}`.
 *
 * Compatibility: a later Brain adds data as new kinds (notes, projects, graph, executions) under the same
 * version; a reader skips kinds it does not know and counts them. A change to an existing kind's fields
 * is a new version, which an older reader refuses (upgrade Brain first) rather than drop a field.
 */
export const EXPORT_FORMAT = 'brain-export';
export const EXPORT_END = 'brain-export-end';
export const EXPORT_VERSION = 1;

/** The record kinds this version reads and writes, in the order an export writes them. */
export const RECORD_KINDS = ['memory', 'memory_version', 'session', 'api_key', 'audit_event'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

export const TRANSFER_LIMITS = {
  /** Longest line read: a memory at every limit (content, metadata, tokens, a 4096-d vector) fits. */
  lineBytes: 1024 * 1024,
  /** Search tokens of one memory (its own, its session context, its speaker). */
  tokenChars: 256 * 1024,
  embeddingDimensions: 4096,
  modelChars: 256,
  textChars: 256,
  auditDetailsBytes: 64 * 1024,
} as const;

const text = (max: number) =>
  z
    .string({ error: 'must be a string' })
    .max(max, { message: `must be at most ${max} characters` })
    .refine(isWellFormedText, { message: MALFORMED_TEXT_MESSAGE });

/** What Brain writes: UTC with milliseconds. Such a time needs no normalising (most of an export). */
const CANONICAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Times are stored as UTC ISO text (the stores compare them as text): an offset is normalised. */
const isoUtc = isoDateSchema.transform((v) => (CANONICAL_TIME.test(v) ? v : new Date(v).toISOString()));

export const tenantIdSchema = createApiKeySchema.shape.tenantId;

const embeddingSchema = z
  .strictObject({
    model: text(TRANSFER_LIMITS.modelChars).refine((s) => s.length > 0, { message: 'must not be empty' }),
    dimensions: z
      .number({ error: 'must be a number' })
      .int({ message: 'must be a whole number' })
      .min(1, { message: `must be from 1 to ${TRANSFER_LIMITS.embeddingDimensions}` })
      .max(TRANSFER_LIMITS.embeddingDimensions, {
        message: `must be from 1 to ${TRANSFER_LIMITS.embeddingDimensions}`,
      }),
    float32: z.string({ error: 'must be a base64 string' }),
  })
  .transform((e, ctx) => {
    const vector = vectorFromBase64(e.float32, e.dimensions);
    if (typeof vector === 'string') {
      ctx.addIssue({ code: 'custom', message: vector, path: ['float32'] });
      return z.NEVER;
    }
    return { model: e.model, vector };
  });

const tokens = text(TRANSFER_LIMITS.tokenChars);

/** The content of a memory, or '' for a purged tombstone (`forget --hard`), checked with the hash below. */
const storedContent = z
  .string({ error: 'must be a string' })
  .refine(isWellFormedText, { message: MALFORMED_TEXT_MESSAGE, abort: true })
  .refine((s) => Buffer.byteLength(s, 'utf8') <= MEMORY_LIMITS.contentBytes, {
    message: `must be at most ${MEMORY_LIMITS.contentBytes} bytes (64 KiB) of UTF-8`,
  });

const memoryLineSchema = z
  .strictObject({
    kind: z.literal('memory'),
    id: memoryIdSchema,
    tenant_id: tenantIdSchema,
    project: projectSchema.nullable(),
    session_id: sessionSchema.nullable(),
    key: keySchema.nullable(),
    content: storedContent,
    content_hash: z.string({ error: 'must be a string' }),
    type: typeSchema,
    tags: tagsSchema,
    metadata: metadataSchema,
    importance: importanceSchema,
    storage_tier: z.enum(['hot', 'warm', 'cold'], { error: 'must be hot, warm or cold' }),
    memory_score: z.number({ error: 'must be a number' }),
    access_count: z
      .number({ error: 'must be a number' })
      .int({ message: 'must be a whole number' })
      .min(0, { message: 'must be 0 or more' }),
    created_at: isoUtc,
    updated_at: isoUtc,
    accessed_at: isoUtc.nullable(),
    expires_at: isoUtc.nullable(),
    valid_from: isoUtc.nullable(),
    valid_to: isoUtc.nullable(),
    superseded_by: memoryIdSchema.nullable(),
    deleted_at: isoUtc.nullable(),
    search_text: tokens,
    context_text: tokens,
    speaker_text: tokens,
    embedding: embeddingSchema.nullable(),
    queued: z.boolean({ error: 'must be true or false' }),
  })
  .superRefine((m, ctx) => {
    // The hash is what dedupe and the embedding queue compare: an edited content must not keep an old one.
    if (m.content === '') {
      if (m.deleted_at === null || m.content_hash !== '')
        ctx.addIssue({
          code: 'custom',
          path: ['content'],
          message:
            'must not be empty (only a purged tombstone, with deleted_at and an empty content_hash, has none)',
        });
    } else if (m.content_hash !== contentHash(m.content) && m.content_hash !== legacyContentHash(m.content)) {
      // An export made before dedupe normalised content carries the older hash: still the same content.
      ctx.addIssue({
        code: 'custom',
        path: ['content_hash'],
        message: `does not match the content (expected ${contentHash(m.content)}): the content was edited; set content_hash to the expected value`,
      });
    }
  })
  .transform(
    ({ kind: _kind, embedding, ...m }): StoredMemory => ({
      ...m,
      embedding_model: embedding?.model ?? null,
      embedding: embedding?.vector ?? null,
    }),
  );

/** A replaced state of a memory (memory_history); after the memories, whose ids it names. */
const versionLineSchema = z
  .strictObject({
    kind: z.literal('memory_version'),
    tenant_id: tenantIdSchema,
    memory_id: memoryIdSchema,
    version: z
      .number({ error: 'must be a number' })
      .int({ message: 'must be a whole number' })
      .min(1, { message: 'must be 1 or more' }),
    content: storedContent,
    type: typeSchema,
    tags: tagsSchema,
    metadata: metadataSchema,
    importance: importanceSchema,
    valid_from: isoUtc.nullable(),
    valid_to: isoUtc.nullable(),
    recorded_from: isoUtc,
    recorded_to: isoUtc,
    change: z.enum(['updated', 'superseded'], { error: 'must be updated or superseded' }),
  })
  .transform(({ kind: _kind, ...v }): StoredVersion => v);

const sessionLineSchema = z
  .strictObject({
    kind: z.literal('session'),
    tenant_id: tenantIdSchema,
    id: sessionSchema,
    project: projectSchema.nullable(),
    client: text(TRANSFER_LIMITS.textChars).nullable(),
    created_at: isoUtc,
    last_seen_at: isoUtc,
  })
  .transform(({ kind: _kind, ...s }): StoredSession => s);

const apiKeyLineSchema = z
  .strictObject({
    kind: z.literal('api_key'),
    id: z.string({ error: 'must be a string' }).regex(/^k_[0-9a-z]{16}$/, {
      message: 'must be a key id like k_0123456789abcdef (k_ and 16 characters)',
    }),
    tenant_id: tenantIdSchema,
    name: text(100).nullable(),
    scopes: z.array(z.enum(SCOPES, { error: `must be one of ${SCOPES.join(', ')}` }), {
      error: 'must be an array of scopes',
    }),
    created_at: isoUtc,
    expires_at: isoUtc.nullable(),
    revoked_at: isoUtc.nullable(),
    last_used_at: isoUtc.nullable(),
  })
  .transform(
    (k): StoredApiKey => ({
      id: k.id,
      tenantId: k.tenant_id,
      name: k.name,
      scopes: k.scopes,
      createdAt: k.created_at,
      expiresAt: k.expires_at,
      revokedAt: k.revoked_at,
      lastUsedAt: k.last_used_at,
    }),
  );

const auditLineSchema = z
  .strictObject({
    kind: z.literal('audit_event'),
    id: z.string({ error: 'must be a string' }).regex(/^[a-z]+_[0-9a-z]{26}$/, {
      message: 'must be an event id like aud_01hx… (a prefix, _ and 26 characters)',
    }),
    at: isoUtc,
    principal: text(TRANSFER_LIMITS.textChars).refine((s) => s.length > 0, { message: 'must not be empty' }),
    tenant_id: tenantIdSchema,
    action: text(TRANSFER_LIMITS.textChars).refine((s) => s.length > 0, { message: 'must not be empty' }),
    target: text(TRANSFER_LIMITS.textChars).nullable(),
    outcome: z.enum(AUDIT_OUTCOMES, { error: `must be one of ${AUDIT_OUTCOMES.join(', ')}` }),
    details: z
      .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
      .refine((d) => Buffer.byteLength(JSON.stringify(d)) <= TRANSFER_LIMITS.auditDetailsBytes, {
        message: `must be at most ${TRANSFER_LIMITS.auditDetailsBytes} bytes as JSON`,
      }),
  })
  .transform(
    (e): StoredAuditEvent => ({
      id: e.id,
      at: e.at,
      principal: e.principal,
      tenantId: e.tenant_id,
      action: e.action,
      target: e.target,
      outcome: e.outcome,
      details: e.details,
    }),
  );

export const RECORD_SCHEMAS = {
  memory: memoryLineSchema,
  memory_version: versionLineSchema,
  session: sessionLineSchema,
  api_key: apiKeyLineSchema,
  audit_event: auditLineSchema,
} as const;

/** What one record line holds once parsed. */
export type ExportRecord =
  | { kind: 'memory'; record: StoredMemory }
  | { kind: 'memory_version'; record: StoredVersion }
  | { kind: 'session'; record: StoredSession }
  | { kind: 'api_key'; record: StoredApiKey }
  | { kind: 'audit_event'; record: StoredAuditEvent };

export const headerSchema = z.strictObject({
  kind: z.literal(EXPORT_FORMAT),
  version: z.literal(EXPORT_VERSION, { error: `must be ${EXPORT_VERSION}` }),
  schema: z.number({ error: 'must be a number' }).int({ message: 'must be a whole number' }),
  engine: z.string({ error: 'must be a string' }),
  brain: z.string({ error: 'must be a string' }),
  exported_at: isoDateSchema,
  filter: z.strictObject({
    tenant: z.string({ error: 'must be a string' }).nullable(),
    project: z.string({ error: 'must be a string' }).nullable(),
  }),
});
export type ExportHeader = z.infer<typeof headerSchema>;

export const endSchema = z.strictObject({
  kind: z.literal(EXPORT_END),
  counts: z.record(
    z.string(),
    z.number({ error: 'must be a number' }).int({ message: 'must be a whole number' }).min(0),
    { error: 'must be an object of counts per kind' },
  ),
});

export function headerLine(header: Omit<ExportHeader, 'kind' | 'version'>): string {
  return JSON.stringify({ kind: EXPORT_FORMAT, version: EXPORT_VERSION, ...header });
}

export function endLine(counts: Record<string, number>): string {
  return JSON.stringify({ kind: EXPORT_END, counts });
}

export function memoryLine(m: StoredMemory): string {
  const { embedding, embedding_model, ...rest } = m;
  return JSON.stringify({
    kind: 'memory',
    ...rest,
    embedding:
      embedding && embedding_model
        ? { model: embedding_model, dimensions: embedding.length, float32: vectorToBase64(embedding) }
        : null,
  });
}

export function versionLine(v: StoredVersion): string {
  return JSON.stringify({ kind: 'memory_version', ...v });
}

export function sessionLine(s: StoredSession): string {
  return JSON.stringify({ kind: 'session', ...s });
}

export function apiKeyLine(k: StoredApiKey): string {
  return JSON.stringify({
    kind: 'api_key',
    id: k.id,
    tenant_id: k.tenantId,
    name: k.name,
    scopes: k.scopes,
    created_at: k.createdAt,
    expires_at: k.expiresAt,
    revoked_at: k.revokedAt,
    last_used_at: k.lastUsedAt,
  });
}

export function auditLine(e: StoredAuditEvent): string {
  return JSON.stringify({
    kind: 'audit_event',
    id: e.id,
    at: e.at,
    principal: e.principal,
    tenant_id: e.tenantId,
    action: e.action,
    target: e.target,
    outcome: e.outcome,
    details: e.details,
  });
}
