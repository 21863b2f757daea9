import { createHash } from 'node:crypto';
import path from 'node:path';
import type { BrainConfig } from '../config/config-schema.js';
import { BrainError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createStorage } from '../storage/create-storage.js';
import { redactUrl } from '../storage/redact-url.js';
import type { Storage, StoreCopy, StoredMemory, StoredVersion, VersionKey } from '../storage/storage.js';
import type { StoreCopyResult } from '../surfaces/cli/cli-program.js';

/** Rows per page read from the source and written to the destination in one transaction. */
const PAGE = 500;

/** What `brain store copy` reports; the CLI prints it. */
export type StoreCopyReport = StoreCopyResult;

/** `sqlite:PATH`, a file path, or a `postgres://` URL → the settings that open that store. */
export function storeLocation(text: string, config: BrainConfig, cwd: string): BrainConfig {
  const value = text.trim();
  if (/^postgres(ql)?:\/\//.test(value)) return { ...config, databaseUrl: value, redisUrl: undefined };
  const file = value.startsWith('sqlite:') ? value.slice('sqlite:'.length) : value;
  if (file.length === 0 || /^[a-z]+:\/\//i.test(file))
    throw new BrainError(
      'INVALID_INPUT',
      `store: expected sqlite:PATH or postgres://…, not ${JSON.stringify(text)}`,
      {
        issues: [{ field: 'store', message: 'expected sqlite:PATH or postgres://…' }],
      },
    );
  return { ...config, dbPath: path.resolve(cwd, file), databaseUrl: undefined, redisUrl: undefined };
}

function describe(settings: BrainConfig): string {
  return settings.databaseUrl ? redactUrl(settings.databaseUrl) : `sqlite:${settings.dbPath}`;
}

/** JSON with object keys sorted: PostgreSQL's jsonb keeps keys in its own order. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value as object)
      .sort()
      .map((k) => [k, sortedKeys((value as Record<string, unknown>)[k])]),
  );
}

/** A memory version in one stable form (metadata keys sorted): what copy, export and import must keep. */
export function canonicalVersion(v: StoredVersion): string {
  return JSON.stringify({ ...v, metadata: sortedKeys(v.metadata) });
}

/** What a copy must carry over, in one stable form: every column but the derived search tokens. */
export function canonical(m: StoredMemory): string {
  return JSON.stringify([
    m.id,
    m.tenant_id,
    m.project,
    m.session_id,
    m.key,
    m.content,
    m.content_hash,
    m.type,
    m.tags,
    sortedKeys(m.metadata),
    m.importance,
    m.storage_tier,
    m.memory_score,
    m.access_count,
    m.created_at,
    m.updated_at,
    m.accessed_at,
    m.expires_at,
    m.valid_from,
    m.valid_to,
    m.superseded_by,
    m.deleted_at,
    m.embedding_model,
    m.embedding?.length ?? 0,
    m.queued,
  ]);
}

async function* pages(copy: StoreCopy): AsyncGenerator<StoredMemory[]> {
  let after: string | null = null;
  for (;;) {
    const page = await copy.exportMemories(after, PAGE);
    if (page.length === 0) return;
    // Read before yielding: the consumer may take rows off the page.
    after = (page.at(-1) as StoredMemory).id;
    yield page;
  }
}

/**
 * `brain store copy`: moves a whole store (memories with their vectors, queue entries and search tokens,
 * and sessions) between SQLite and PostgreSQL, in pages, skipping rows the destination has; then reads
 * both back and checks that every source memory is in the destination with the same checksum. A second
 * run copies nothing and verifies the same.
 */
export async function copyStore(
  config: BrainConfig,
  options: {
    from: string;
    to: string;
    cwd: string;
    logger: Logger;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<StoreCopyReport> {
  const fromSettings = storeLocation(options.from, config, options.cwd);
  const toSettings = storeLocation(options.to, config, options.cwd);
  if (describe(fromSettings) === describe(toSettings))
    throw new BrainError('INVALID_INPUT', '--to: is the same store as --from', {
      issues: [{ field: 'to', message: 'same store as --from' }],
    });
  const started = performance.now();
  const source = await createStorage(fromSettings, { logger: options.logger });
  let target: Storage | null = null;
  try {
    const schema = await source.schema();
    if (schema.current < schema.latest)
      throw new BrainError(
        'STORAGE_ERROR',
        `--from ${describe(fromSettings)} is at schema version ${schema.current}, this build needs ${schema.latest}: run \`brain migrate\` on it first`,
      );
    target = await createStorage(toSettings, { logger: options.logger });
    await target.migrate();
    const from = source.copy();
    const to = target.copy();
    const counts = await from.counts();
    let copied = 0;
    let done = 0;
    options.onProgress?.(0, counts.memories);
    for await (const page of pages(from)) {
      copied += (await to.importMemories(page)).written;
      done += page.length;
      options.onProgress?.(done, counts.memories);
    }
    let sessionsCopied = 0;
    let after: { tenant_id: string; id: string } | null = null;
    for (;;) {
      const page = await from.exportSessions(after, PAGE);
      if (page.length === 0) break;
      sessionsCopied += await to.importSessions(page);
      const last = page.at(-1) as { tenant_id: string; id: string };
      after = { tenant_id: last.tenant_id, id: last.id };
    }
    // Versions after the memories they belong to (a version whose memory was left out is left out too).
    const versionsSource = await from.countVersions();
    let versionsCopied = 0;
    let afterVersion: VersionKey | null = null;
    for (;;) {
      const page = await from.exportVersions(afterVersion, PAGE);
      if (page.length === 0) break;
      versionsCopied += await to.importVersions(page);
      const last = page.at(-1) as StoredVersion;
      afterVersion = { tenant_id: last.tenant_id, memory_id: last.memory_id, version: last.version };
    }
    const verified = { ...(await verify(from, to)), ...(await verifyVersions(from, to)) };
    const seconds = (performance.now() - started) / 1000;
    const report: StoreCopyReport = {
      from: describe(fromSettings),
      to: describe(toSettings),
      memories: { source: counts.memories, copied, already: counts.memories - copied },
      sessions: {
        source: counts.sessions,
        copied: sessionsCopied,
        already: counts.sessions - sessionsCopied,
      },
      versions: { source: versionsSource, copied: versionsCopied, already: versionsSource - versionsCopied },
      verified,
      seconds,
      perSecond: counts.memories / Math.max(seconds, 1e-3),
    };
    if (verified.missing > 0 || verified.mismatched > 0 || verified.versions_missing > 0)
      throw new BrainError(
        'STORAGE_ERROR',
        `store copy did not verify: ${verified.missing} memories missing and ${verified.mismatched} different, ${verified.versions_missing} versions missing or different in ${report.to}`,
        { report },
      );
    return report;
  } finally {
    await target?.close();
    await source.close();
  }
}

/**
 * Both stores' versions read in order side by side: each source version must be in the destination,
 * equal (every source memory is there under its id once the memories verified, so its versions are too).
 */
async function verifyVersions(
  from: StoreCopy,
  to: StoreCopy,
): Promise<{ versions: number; versions_missing: number }> {
  const key = (v: VersionKey) =>
    `${v.tenant_id}\u0000${v.memory_id}\u0000${String(v.version).padStart(10, '0')}`;
  let versions = 0;
  let missing = 0;
  let afterTarget: VersionKey | null = null;
  let buffer: StoredVersion[] = [];
  let exhausted = false;
  const next = async (): Promise<StoredVersion | null> => {
    if (buffer.length === 0 && !exhausted) {
      buffer = await to.exportVersions(afterTarget, PAGE);
      const last = buffer.at(-1);
      if (last) afterTarget = { tenant_id: last.tenant_id, memory_id: last.memory_id, version: last.version };
      else exhausted = true;
    }
    return buffer[0] ?? null;
  };
  let afterSource: VersionKey | null = null;
  for (;;) {
    const page = await from.exportVersions(afterSource, PAGE);
    if (page.length === 0) break;
    for (const v of page) {
      versions++;
      let other = await next();
      while (other && key(other) < key(v)) {
        buffer.shift();
        other = await next();
      }
      if (!other || key(other) !== key(v) || canonicalVersion(other) !== canonicalVersion(v)) missing++;
    }
    const last = page.at(-1) as StoredVersion;
    afterSource = { tenant_id: last.tenant_id, memory_id: last.memory_id, version: last.version };
  }
  return { versions, versions_missing: missing };
}

/** Both stores read in id order side by side: each source memory must be in the destination, equal. */
async function verify(
  from: StoreCopy,
  to: StoreCopy,
): Promise<Omit<StoreCopyReport['verified'], 'versions' | 'versions_missing'>> {
  const digest = createHash('sha256');
  let memories = 0;
  let mismatched = 0;
  let missing = 0;
  const target = pages(to);
  let buffer: StoredMemory[] = [];
  let exhausted = false;
  const nextTarget = async (): Promise<StoredMemory | null> => {
    if (buffer.length === 0 && !exhausted) {
      const page = await target.next();
      if (page.done) exhausted = true;
      else buffer = page.value;
    }
    return buffer[0] ?? null;
  };
  for await (const page of pages(from)) {
    for (const m of page) {
      memories++;
      const line = canonical(m);
      digest.update(line);
      let other = await nextTarget();
      while (other && other.id < m.id) {
        buffer.shift();
        other = await nextTarget();
      }
      if (!other || other.id !== m.id) missing++;
      else if (canonical(other) !== line) mismatched++;
    }
  }
  return { memories, mismatched, missing, checksum: digest.digest('hex').slice(0, 16) };
}
