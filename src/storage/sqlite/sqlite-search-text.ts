import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { searchTokens, speakerOf } from '../../modules/search/text-tokens.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { prepareStatement } from './statement-cache.js';

/** A memory's own search tokens: its content's and its tags', space-separated. */
export function ownSearchText(content: string, tags: readonly string[]): string {
  return searchTokens(tags.length > 0 ? `${content} ${tags.join(' ')}` : content).join(' ');
}

/** The search tokens of who said a memory, '' when unknown. */
export function speakerSearchText(content: string, metadata: Record<string, unknown>): string {
  const speaker = speakerOf(content, metadata);
  return speaker === null ? '' : searchTokens(speaker).join(' ');
}

/** Tenants' marks, kept once computed (a mark never changes). */
const marks = new Map<string, string>();
const MARKS_MAX = 10_000;

/**
 * The prefix each token of a tenant's rows carries in memories_fts (migration 15): 16 hex digits of the
 * SHA-256 of its id. Each tenant then has its own terms in the one index, so a search counts and reads
 * the postings of the tenant's rows only, as fast as in a store of one tenant (ANDing a tenant term
 * instead cost ~0.4 ms a query at 100k memories). Two ids sharing a mark (odds ~1e-10 among 100,000
 * tenants) would share statistics, never rows: every search also filters on tenant_id.
 */
export function tenantMark(tenantId: string): string {
  let mark = marks.get(tenantId);
  if (mark === undefined) {
    mark = createHash('sha256').update(tenantId).digest('hex').slice(0, 16);
    if (marks.size >= MARKS_MAX) marks.clear();
    marks.set(tenantId, mark);
  }
  return mark;
}

/** Space-separated search tokens as memories_fts holds them: each behind the tenant's mark. */
export function markedTokens(mark: string, tokens: string): string {
  return tokens.length === 0 ? '' : `${mark}${tokens.replaceAll(' ', ` ${mark}`)}`;
}

/** The index entry of a row: its own tokens and its context's, marked with its tenant (markedTokens). */
export const INSERT_FTS_SQL = 'INSERT INTO memories_fts (rowid, search_text, context_text) VALUES (?, ?, ?)';

/** The values of INSERT_FTS_SQL for a row. */
export function ftsValues(rid: number | bigint, tenantId: string, own: string, context: string): unknown[] {
  const mark = tenantMark(tenantId);
  return [rid, markedTokens(mark, own), markedTokens(mark, context)];
}

type SearchFields = [rid: number, tenantId: string, own: string, context: string];

/** Every live row's rid, tenant and stored tokens, read a page at a time (the caller writes meanwhile). */
export function* liveSearchFields(db: SqliteDatabase): Generator<SearchFields> {
  const page = db
    .prepare(
      `SELECT rid, tenant_id, search_text, context_text FROM memories
       WHERE deleted_at IS NULL AND rid > ? ORDER BY rid LIMIT 5000`,
    )
    .raw();
  let after = 0;
  for (;;) {
    const rows = page.all(after) as SearchFields[];
    if (rows.length === 0) return;
    yield* rows;
    after = (rows.at(-1) as SearchFields)[0];
  }
}

/**
 * Migration 15: every live row indexed again with its tenant's mark, from the tokens it stores. The
 * index is contentless, so its entries are dropped at once and written again.
 */
export function markIndexedTokens(db: SqliteDatabase): void {
  db.exec("INSERT INTO memories_fts (memories_fts) VALUES ('delete-all')");
  const insert = db.prepare(INSERT_FTS_SQL);
  for (const [rid, tenant, own, context] of liveSearchFields(db))
    insert.run(...ftsValues(rid, tenant, own, context));
}

function joined(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join(' ');
}

interface PendingRow {
  rid: number;
  own: string;
  context: string;
  /** The context grew after the row was written (its next neighbour came in the same batch). */
  grown: boolean;
}

/**
 * Keeps memories_fts in step with the memories table (migration 4): every row's own tokens and its
 * context, which is the own tokens of the live memories before and after it in its session. The store
 * calls it inside its write transactions; nothing else writes the index.
 */
export class SqliteSearchText {
  readonly #insert: Database.Statement;
  readonly #delete: Database.Statement;
  readonly #last: Database.Statement;
  readonly #neighbours: Database.Statement;
  readonly #read: Database.Statement;
  readonly #setContext: Database.Statement;
  readonly #setOwn: Database.Statement;
  readonly #readRow: Database.Statement;
  readonly #fields: Database.Statement;
  readonly #count: Database.Statement;

  constructor(db: SqliteDatabase) {
    this.#insert = prepareStatement(db, INSERT_FTS_SQL);
    this.#delete = prepareStatement(db, 'DELETE FROM memories_fts WHERE rowid = ?');
    this.#last = prepareStatement(
      db,
      `SELECT rid, search_text AS own, context_text AS context FROM memories
       WHERE tenant_id = ? AND session_id = ? AND deleted_at IS NULL ORDER BY rid DESC LIMIT 1`,
    );
    this.#neighbours = prepareStatement(
      db,
      `SELECT
         (SELECT rid FROM memories WHERE tenant_id = @t AND session_id = @s AND deleted_at IS NULL
            AND rid < @r ORDER BY rid DESC LIMIT 1) AS before,
         (SELECT rid FROM memories WHERE tenant_id = @t AND session_id = @s AND deleted_at IS NULL
            AND rid > @r ORDER BY rid LIMIT 1) AS after`,
    );
    this.#read = prepareStatement(
      db,
      'SELECT search_text AS own, context_text AS context FROM memories WHERE rid = ?',
    );
    this.#setContext = prepareStatement(db, 'UPDATE memories SET context_text = ? WHERE rid = ?');
    this.#setOwn = prepareStatement(
      db,
      'UPDATE memories SET search_text = ?, speaker_text = ? WHERE rid = ?',
    );
    this.#readRow = prepareStatement(
      db,
      'SELECT content, tags, metadata, context_text AS context FROM memories WHERE rid = ?',
    );
    this.#fields = prepareStatement(
      db,
      'SELECT tenant_id AS tenantId, search_text AS own, context_text AS context FROM memories WHERE rid = ?',
    );
    this.#count = prepareStatement(
      db,
      `INSERT INTO search_stats (tenant_id, documents, own_chars, context_chars) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant_id) DO UPDATE SET documents = documents + excluded.documents,
         own_chars = own_chars + excluded.own_chars, context_chars = context_chars + excluded.context_chars`,
    );
  }

  /** Adds to the tenant's statistics (search_stats): documents indexed and their fields' lengths. */
  count(tenantId: string, documents: number, ownChars: number, contextChars: number): void {
    this.#count.run(tenantId, documents, ownChars, contextChars);
  }

  /** An indexed row's tenant and fields as they stand, before a change to them. */
  #before(rid: number): { tenantId: string; own: string; context: string } {
    return this.#fields.get(rid) as { tenantId: string; own: string; context: string };
  }

  /** A writer for one insert batch: new rows' index entries are written once, at `finish`. */
  batch(tenantId: string): SearchTextBatch {
    return new SearchTextBatch(this, tenantId);
  }

  /** The session's newest live memory: the neighbour a new memory of the session joins. */
  lastOf(tenantId: string, session: string): { rid: number; own: string; context: string } | null {
    return (this.#last.get(tenantId, session) as { rid: number; own: string; context: string }) ?? null;
  }

  /** Writes a row's context and index entry now (a row that was already indexed). */
  rewrite(rid: number, own: string, context: string): void {
    const before = this.#before(rid);
    this.count(before.tenantId, 0, own.length - before.own.length, context.length - before.context.length);
    this.#setContext.run(context, rid);
    this.#delete.run(rid);
    this.#insert.run(...ftsValues(rid, before.tenantId, own, context));
  }

  /** Adds a row written in this transaction to the index (the batch counts it in the statistics). */
  add(tenantId: string, row: PendingRow): void {
    if (row.grown) this.#setContext.run(row.context, row.rid);
    this.#insert.run(...ftsValues(row.rid, tenantId, row.own, row.context));
  }

  /**
   * The content, tags or metadata of a live row changed (already written): its own and speaker tokens
   * are computed again from the row and re-indexed; its context stays.
   */
  reindexOwn(rid: number): void {
    const row = this.#readRow.get(rid) as {
      content: string;
      tags: string;
      metadata: string;
      context: string;
    };
    const own = ownSearchText(row.content, JSON.parse(row.tags) as string[]);
    const speaker = speakerSearchText(row.content, JSON.parse(row.metadata) as Record<string, unknown>);
    const before = this.#before(rid);
    this.count(before.tenantId, 0, own.length - before.own.length, 0);
    this.#setOwn.run(own, speaker, rid);
    this.#delete.run(rid);
    this.#insert.run(...ftsValues(rid, before.tenantId, own, row.context));
  }

  /** A live row leaves the index (it is being forgotten); call it before its fields are blanked. */
  remove(rid: number): void {
    const before = this.#before(rid);
    this.count(before.tenantId, -1, -before.own.length, -before.context.length);
    this.#delete.run(rid);
  }

  /**
   * A purged row's words must not live on in its neighbours' contexts: once the row has left the live
   * set, each neighbour's context is computed again from the live memories around it.
   */
  purgeFromNeighbours(tenantId: string, session: string, rid: number): void {
    const around = this.#around(tenantId, session, rid);
    for (const neighbour of [around.before, around.after]) {
      if (neighbour === null) continue;
      const next = this.#around(tenantId, session, neighbour);
      const context = joined(this.#ownOf(next.before), this.#ownOf(next.after));
      this.rewrite(neighbour, this.#ownOf(neighbour), context);
    }
  }

  #around(tenantId: string, session: string, rid: number): { before: number | null; after: number | null } {
    return this.#neighbours.get({ t: tenantId, s: session, r: rid }) as {
      before: number | null;
      after: number | null;
    };
  }

  #ownOf(rid: number | null): string {
    if (rid === null) return '';
    return (this.#read.get(rid) as { own: string } | undefined)?.own ?? '';
  }
}

/**
 * The index entries of one insert batch. A new memory's context starts as its predecessor's tokens; its
 * successor, when it comes in the same batch, adds its tokens before the row is indexed, so a batch of
 * a conversation's turns indexes each turn once.
 */
export class SearchTextBatch {
  readonly #text: SqliteSearchText;
  readonly #tenantId: string;
  readonly #rows: PendingRow[] = [];
  readonly #lastOfSession = new Map<string, PendingRow>();

  constructor(text: SqliteSearchText, tenantId: string) {
    this.#text = text;
    this.#tenantId = tenantId;
  }

  /**
   * The search fields of a memory about to be inserted (own, starting context and speaker tokens),
   * linking it to its session's previous memory. Call `added` with its rid once the row is written.
   */
  prepare(
    content: string,
    tags: readonly string[],
    metadata: Record<string, unknown>,
    session: string | null,
  ): { own: string; context: string; speaker: string } {
    const own = ownSearchText(content, tags);
    const speaker = speakerSearchText(content, metadata);
    if (session === null) return { own, context: '', speaker };
    const inBatch = this.#lastOfSession.get(session);
    if (inBatch) {
      inBatch.context = joined(inBatch.context, own);
      inBatch.grown = true;
      return { own, context: inBatch.own, speaker };
    }
    const previous = this.#text.lastOf(this.#tenantId, session);
    if (!previous) return { own, context: '', speaker };
    this.#text.rewrite(previous.rid, previous.own, joined(previous.context, own));
    return { own, context: previous.own, speaker };
  }

  added(rid: number, session: string | null, fields: { own: string; context: string }): void {
    const row: PendingRow = { rid, own: fields.own, context: fields.context, grown: false };
    this.#rows.push(row);
    if (session !== null) this.#lastOfSession.set(session, row);
  }

  /** Writes every new row's index entry, and counts them in the tenant's statistics at once. */
  finish(): void {
    if (this.#rows.length === 0) return;
    let own = 0;
    let context = 0;
    for (const row of this.#rows) {
      this.#text.add(this.#tenantId, row);
      own += row.own.length;
      context += row.context.length;
    }
    this.#text.count(this.#tenantId, this.#rows.length, own, context);
  }
}

/**
 * Migration 4's backfill: every live memory's own tokens and context, computed in JS (SQL has no
 * stemmer), its index entry, and each tenant's statistics.
 */
export function backfillSearchText(db: SqliteDatabase): void {
  const rows = db
    .prepare(
      `SELECT rid, tenant_id, session_id, content, tags, metadata FROM memories WHERE deleted_at IS NULL
       ORDER BY tenant_id, session_id, rid`,
    )
    .all() as {
    rid: number;
    tenant_id: string;
    session_id: string | null;
    content: string;
    tags: string;
    metadata: string;
  }[];
  const own = rows.map((r) => ownSearchText(r.content, JSON.parse(r.tags) as string[]));
  const update = db.prepare(
    'UPDATE memories SET search_text = ?, context_text = ?, speaker_text = ? WHERE rid = ?',
  );
  const insert = db.prepare('INSERT INTO memories_fts (rowid, search_text, context_text) VALUES (?, ?, ?)');
  const count = db.prepare(
    `INSERT INTO search_stats (tenant_id, documents, own_chars, context_chars) VALUES (?, 1, ?, ?)
     ON CONFLICT (tenant_id) DO UPDATE SET documents = documents + 1,
       own_chars = own_chars + excluded.own_chars, context_chars = context_chars + excluded.context_chars`,
  );
  rows.forEach((row, i) => {
    const sameSession = (j: number) =>
      row.session_id !== null &&
      rows[j]?.tenant_id === row.tenant_id &&
      rows[j]?.session_id === row.session_id;
    const context = joined(
      sameSession(i - 1) ? (own[i - 1] ?? '') : '',
      sameSession(i + 1) ? (own[i + 1] ?? '') : '',
    );
    const speaker = speakerSearchText(row.content, JSON.parse(row.metadata) as Record<string, unknown>);
    update.run(own[i], context, speaker, row.rid);
    insert.run(row.rid, own[i], context);
    count.run(row.tenant_id, own[i]?.length ?? 0, context.length);
  });
}
