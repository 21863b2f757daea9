import { BrainError, isBrainError } from '../core/errors.js';
import { contentHash } from '../modules/memory/content-hash.js';
import { type ExportRecord, RECORD_KINDS, type RecordKind } from '../modules/transfer/export-format.js';
import { disabledKeyRecord, type ImportedMemory } from '../modules/transfer/imported-memory.js';
import type { StoredApiKey } from '../modules/transfer/transfer-records.js';
import { ownSearchText, speakerSearchText } from '../storage/sqlite/sqlite-search-text.js';
import type {
  StoreCopy,
  StoredAuditEvent,
  StoredMemory,
  StoredSession,
  StoredVersion,
} from '../storage/storage.js';
import type { KindImportCounts } from '../surfaces/cli/transfer-commands.js';

/** Rows per transaction: large enough that commits are a small part of the time, small enough to be brief. */
export const IMPORT_BATCH = 2000;

/**
 * A memory of another system's file as a stored row: the tokens made by the function every engine's
 * store uses, no session (so no context), no vector yet: it joins the embedding queue, as a remember
 * whose vector comes later.
 */
export function storedFromImported(m: ImportedMemory): StoredMemory {
  return {
    id: m.id,
    tenant_id: m.tenant_id,
    project: m.project,
    session_id: null,
    key: null,
    content: m.content,
    content_hash: contentHash(m.content),
    type: m.type,
    tags: m.tags,
    metadata: m.metadata,
    importance: 0.5,
    storage_tier: 'hot',
    memory_score: 0.5,
    access_count: 0,
    created_at: m.created_at,
    updated_at: m.updated_at,
    accessed_at: null,
    expires_at: m.expires_at,
    valid_from: null,
    valid_to: null,
    superseded_by: null,
    deleted_at: null,
    search_text: ownSearchText(m.content, m.tags),
    context_text: '',
    speaker_text: speakerSearchText(m.content, m.metadata),
    embedding_model: null,
    embedding: null,
    queued: true,
  };
}

function zero(): KindImportCounts {
  return { read: 0, imported: 0, already: 0, duplicates: 0 };
}

/**
 * Writes an import's records through the store's copy port in batches of {@link IMPORT_BATCH}, one
 * transaction each, and counts what each kind wrote and left. API keys are written as disabled records
 * (see disabledKeyRecord): an export has no secrets, so no imported key can authenticate.
 */
export class ImportWriter {
  readonly counts = Object.fromEntries(RECORD_KINDS.map((k) => [k, zero()])) as Record<
    RecordKind,
    KindImportCounts
  >;
  readonly #copy: StoreCopy;
  readonly #now: string;
  readonly #onWritten: (records: number) => void;
  #memories: StoredMemory[] = [];
  #versions: StoredVersion[] = [];
  #sessions: StoredSession[] = [];
  #keys: StoredApiKey[] = [];
  #events: StoredAuditEvent[] = [];
  #inflight: Promise<void> | null = null;
  #failure: { error: unknown } | null = null;

  constructor(copy: StoreCopy, now: string, onWritten: (records: number) => void) {
    this.#copy = copy;
    this.#now = now;
    this.#onWritten = onWritten;
  }

  /** Records written so far, every kind. */
  get written(): number {
    return RECORD_KINDS.reduce((n, k) => n + this.counts[k].imported, 0);
  }

  async add(records: readonly ExportRecord[]): Promise<void> {
    for (const r of records) {
      this.counts[r.kind].read++;
      if (r.kind === 'memory') this.#memories.push(r.record);
      else if (r.kind === 'memory_version') this.#versions.push(r.record);
      else if (r.kind === 'session') this.#sessions.push(r.record);
      else if (r.kind === 'api_key') this.#keys.push(r.record);
      else this.#events.push(r.record);
      await this.#flush(false);
    }
  }

  async addMemories(rows: readonly StoredMemory[]): Promise<void> {
    for (const row of rows) {
      this.counts.memory.read++;
      this.#memories.push(row);
      await this.#flush(false);
    }
  }

  /** Writes what is buffered, and waits for every write. */
  async finish(): Promise<void> {
    await this.#flush(true);
    await this.#settle();
  }

  /**
   * Starts writing each kind's full buffer (all of them with `all`). One batch is written at a time,
   * but the caller goes on reading the next while it is: on PostgreSQL the server's work on one batch
   * overlaps this process parsing the next (SQLite's writes are synchronous: no overlap, no harm).
   */
  async #flush(all: boolean): Promise<void> {
    const full = (rows: unknown[]) => rows.length >= IMPORT_BATCH || (all && rows.length > 0);
    // A version is written only under its memory (see importVersions): the memories read so far go first.
    if (full(this.#memories) || (full(this.#versions) && this.#memories.length > 0)) {
      const rows = this.#memories;
      this.#memories = [];
      await this.#start(async () => {
        const c = await this.#copy.importMemories(rows);
        this.#tally('memory', rows.length, c.written, c.existing, c.duplicates);
      });
    }
    if (full(this.#versions)) {
      const rows = this.#versions;
      this.#versions = [];
      await this.#start(async () => {
        const written = await this.#copy.importVersions(rows);
        this.#tally('memory_version', rows.length, written, rows.length - written, 0);
      });
    }
    if (full(this.#sessions)) {
      const rows = this.#sessions;
      this.#sessions = [];
      await this.#start(async () => {
        const written = await this.#copy.importSessions(rows);
        this.#tally('session', rows.length, written, rows.length - written, 0);
      });
    }
    if (full(this.#keys)) {
      const rows = this.#keys.map((k) => disabledKeyRecord(k, this.#now));
      this.#keys = [];
      await this.#start(async () => {
        const written = await this.#copy.importApiKeys(rows);
        this.#tally('api_key', rows.length, written, rows.length - written, 0);
      });
    }
    if (full(this.#events)) {
      const rows = this.#events;
      this.#events = [];
      await this.#start(async () => {
        const written = await this.#copy.importAuditEvents(rows);
        this.#tally('audit_event', rows.length, written, rows.length - written, 0);
      });
    }
  }

  /** Waits for the batch in flight (throwing its failure), then starts `write` without waiting for it. */
  async #start(write: () => Promise<void>): Promise<void> {
    await this.#settle();
    // Caught at once (and thrown at the next wait): a rejection nobody awaited yet would end the process.
    this.#inflight = write().catch((error: unknown) => {
      this.#failure = { error };
    });
  }

  async #settle(): Promise<void> {
    await this.#inflight;
    this.#inflight = null;
    if (this.#failure) throw this.#failure.error;
  }

  #tally(kind: RecordKind, rows: number, written: number, already: number, duplicates: number): void {
    const c = this.counts[kind];
    c.imported += written;
    c.already += already;
    c.duplicates += duplicates;
    this.#onWritten(rows);
  }
}

/**
 * A failure after some batches were committed: the message says so, and that running the import
 * again finishes it (ids already there are left as they are).
 */
export function interrupted(error: unknown, written: number): unknown {
  if (written === 0) return error;
  const suffix = `; ${written} records were imported before the failure, and running the same import again finishes it (records already there are left as they are)`;
  if (isBrainError(error))
    return new BrainError(error.code, `${error.message}${suffix}`, error.details, { cause: error });
  return new BrainError('INTERNAL', `internal error; the log has the details${suffix}`, {}, { cause: error });
}
