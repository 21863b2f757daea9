import {
  DEFAULT_LEXICAL_PARAMS,
  inverseDocumentFrequency,
  scoreLexical,
  type TenantTextStats,
} from '../../modules/search/lexical-score.js';
import { searchTokens } from '../../modules/search/text-tokens.js';
import type { PgDatabase } from './pg-database.js';
import {
  PG_MEMORY_COLUMNS,
  PG_MEMORY_FROM,
  type PgMemoryRow,
  type PgWhere,
  vectorBinary,
} from './pg-memory-rows.js';
import { type QueryVector, similaritySql } from './pg-vector-search.js';

/** Most documents the candidate query may rank; terms are chosen rarest first within it (as on SQLite). */
const MATCH_BUDGET = 1000;
const MAX_TERMS = 24;
const SHORT_LIST = 100;
/** How long a tenant's term statistics are trusted (a write here or on another replica also drops them). */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 20_000;
/**
 * Reading one match through the GIN index costs about what testing SHORT_LIST / SPARSE_FACTOR rows
 * does when walking newest first (measured at 100,000 memories: 1,200 matches took 3.9 ms walking and
 * under 1 ms through the index).
 */
const SPARSE_FACTOR = 40;
/** A window of the newest rows is expected to hold this many times the short list of sparse matches. */
const WINDOW_MARGIN = 2;
/** The statistics row of a tenant: its live documents and text lengths (never a lexeme). */
const TENANT_ROW = '';
/** A term whose statistics come in more delta rows than this is folded into one row after the read. */
const FOLD_PARTS = 32;
/** Folds of one tenant from this process are this far apart at least. */
const FOLD_EVERY_MS = 1000;

/** A term's live documents; for TENANT_ROW, the documents and the sums of their text lengths. */
interface TermStats {
  docs: number;
  own: number;
  context: number;
}

/** A row of the short list, with its search fields and its similarity to the query vector. */
interface Candidate extends PgMemoryRow {
  own: string;
  context: string;
  speaker: string;
  similarity: number | null;
}

/** A text hit: its BM25F score, its row, and its similarity to the query vector when there is one. */
export interface TextHit {
  rid: string;
  score: number;
  row: PgMemoryRow;
  similarity: number | null;
}

/** A tsquery term: our tokens are [a-z0-9]-ish words, quoted so no user text is read as syntax. */
function term(token: string): string {
  return `'${token.replaceAll("'", "''").replaceAll('\\', '\\\\')}'`;
}

/**
 * Full-text search on PostgreSQL: the GIN index on search_tsv picks a short list (rarest terms first
 * within the match budget, ranked by ts_rank with the fields' weights), and the short list is scored
 * again with BM25F and the tenant's own statistics, as on SQLite, so both engines rank alike.
 */
export class PgTextSearch {
  readonly #db: PgDatabase;
  readonly #terms = new Map<string, { stats: TermStats; at: number }>();
  /** Statistics being read now, shared by every recall that needs them meanwhile. */
  readonly #reading = new Map<string, Promise<TermStats>>();
  readonly #folded = new Map<string, number>();
  /**
   * The highest row id seen, of any tenant (read with the statistics): the short list's window of newest
   * rows is a share of the ids below it. An old value only widens the window.
   */
  #maxRid = 0;

  readonly #matchBudget: number;
  readonly #shortListSize: number;

  /** `sizes` scales the match budget and the short list down (tests reach every path with few rows). */
  constructor(db: PgDatabase, sizes: { matchBudget?: number; shortList?: number } = {}) {
    this.#db = db;
    this.#matchBudget = sizes.matchBudget ?? MATCH_BUDGET;
    this.#shortListSize = sizes.shortList ?? SHORT_LIST;
  }

  /**
   * A write here or, through the change bus, on another replica: the tenant's statistics become stale
   * (used while they are read again). A term in no document is never kept (see #read), so no notice is
   * waited for before a term another replica's write added first is searched.
   */
  invalidate(tenantId: string): void {
    const prefix = `${tenantId}\u0000`;
    for (const [key, value] of this.#terms) if (tenantId === '*' || key.startsWith(prefix)) value.at = 0;
  }

  async search(
    tenantId: string,
    text: string,
    where: PgWhere,
    limit: number,
    queryVector: QueryVector | null,
  ): Promise<TextHit[]> {
    const terms = [...new Set(searchTokens(text))].slice(0, MAX_TERMS);
    if (terms.length === 0) return [];
    const known = await this.#statistics(tenantId, [TENANT_ROW, ...terms]);
    const tenant = known.get(TENANT_ROW) ?? { docs: 0, own: 0, context: 0 };
    const stats: TenantTextStats = {
      documents: tenant.docs,
      averageOwnLength: tenant.docs > 0 ? tenant.own / tenant.docs : 0,
      averageContextLength: tenant.docs > 0 ? tenant.context / tenant.docs : 0,
    };
    const df = new Map(terms.map((t) => [t, known.get(t)?.docs ?? 0]));
    const ranked = terms
      .filter((t) => (df.get(t) ?? 0) > 0)
      .sort((a, b) => (df.get(a) ?? 0) - (df.get(b) ?? 0));
    if (ranked.length === 0) return [];
    const chosen: string[] = [];
    let matches = 0;
    for (const t of ranked) {
      const n = df.get(t) ?? 0;
      if (matches + n > this.#matchBudget && chosen.length > 0) break;
      chosen.push(t);
      matches += n;
    }
    const common = matches > this.#matchBudget;
    // Past the budget the newest matches are taken. When matches are sparse, walking the rows newest
    // first (the primary key backwards, the planner's pick for `rid DESC`) tests thousands of rows for
    // each hundred it keeps; then the GIN index's matches, sorted, are cheaper (`rid + 0` is the same
    // order without the index's): about matches² < documents × SPARSE_FACTOR.
    const sparse = matches * matches < stats.documents * SPARSE_FACTOR;
    const order = !common
      ? `ts_rank('{0.1, 0.2, 0.5, 1.0}', m.search_tsv, q.q) DESC, m.rid DESC`
      : sparse
        ? '(m.rid + 0) DESC'
        : 'm.rid DESC';
    const shortList = Math.max(this.#shortListSize, limit * 4);
    // Sparse matches, sorted, are read only among the newest rows when those should hold enough of them
    // (WINDOW_MARGIN times the short list, if the tenant's rows spread evenly over the row ids): the GIN
    // index's matches ANDed with a primary-key range (a bitmap AND) read a tenth of the rows. Within a
    // window holding a full short list the newest matches are the same; a window that held fewer is
    // read again whole.
    const fraction = (WINDOW_MARGIN * shortList) / matches;
    const window = common && sparse && fraction < 1 ? Math.floor(this.#maxRid * (1 - fraction)) : 0;
    let rows = await this.#shortList(where, chosen, order, shortList, queryVector, window);
    if (window > 0 && rows.length < shortList)
      rows = await this.#shortList(where, chosen, order, shortList, queryVector, 0);
    if (rows.length === 0) return [];
    const idf = new Map(
      ranked.map((t) => [
        t,
        inverseDocumentFrequency(stats.documents, Math.min(stats.documents, df.get(t) ?? 0)),
      ]),
    );
    const scores = scoreLexical(ranked, idf, stats, rows, DEFAULT_LEXICAL_PARAMS);
    return rows
      .map((r, i) => ({ rid: r.rid, score: scores[i] ?? 0, row: r, similarity: r.similarity }))
      .filter((h) => h.score > 0)
      .sort((a, b) => b.score - a.score || Number(b.rid) - Number(a.rid))
      .slice(0, limit);
  }

  /** The short list: matches of the chosen terms in `order`, with their rows and similarities. */
  async #shortList(
    where: PgWhere,
    chosen: string[],
    order: string,
    shortList: number,
    queryVector: QueryVector | null,
    window: number,
  ): Promise<Candidate[]> {
    const params: unknown[] = [...where.params, chosen.map(term).join(' | '), shortList];
    const p = (value: unknown) => `$${params.push(value)}`;
    const inWindow = window > 0 ? ` AND m.rid > ${p(window)}` : '';
    // Similarities are computed for the rows kept only (the planner evaluates them after the LIMIT).
    const similarity = queryVector
      ? similaritySql(
          'm.rid',
          p(vectorBinary(queryVector.vector)),
          queryVector.vector.length,
          p(queryVector.model),
        )
      : 'NULL::float8';
    const n = where.params.length;
    const { rows } = await this.#db.query<Candidate>(
      `SELECT ${PG_MEMORY_COLUMNS}, m.search_text AS own, m.context_text AS context, m.speaker_text AS speaker,
         ${similarity} AS similarity
       FROM ${PG_MEMORY_FROM}, to_tsquery('simple', $${n + 1}) q(q)
       WHERE ${where.sql} AND m.search_tsv @@ q.q${inWindow} ORDER BY ${order} LIMIT $${n + 2}`,
      params,
    );
    return rows;
  }

  /**
   * The tenant's statistics for each term (and TENANT_ROW). A cached entry younger than the TTL is used;
   * an older one (or one a write made stale) is used too while one read refreshes it in the background,
   * since a count moved by a few writes changes an IDF by as little. A term never read, or read as in no
   * document (a write on any replica may have added it since), is read before answering. Reads in flight are
   * shared: a burst of recalls asks PostgreSQL once per term, not once per recall.
   */
  async #statistics(tenantId: string, terms: string[]): Promise<Map<string, TermStats>> {
    const now = Date.now();
    const out = new Map<string, TermStats>();
    const waits: Promise<void>[] = [];
    const missing: string[] = [];
    const stale: string[] = [];
    for (const t of terms) {
      const key = `${tenantId}\u0000${t}`;
      const cached = this.#terms.get(key);
      if (cached) {
        out.set(t, cached.stats);
        if (now - cached.at >= CACHE_TTL_MS && !this.#reading.has(key)) stale.push(t);
        continue;
      }
      const inFlight = this.#reading.get(key);
      if (inFlight) waits.push(inFlight.then((stats) => void out.set(t, stats)));
      else missing.push(t);
    }
    if (stale.length > 0) this.#read(tenantId, stale).catch(() => undefined); // for the next recall; this one uses the old
    if (missing.length > 0)
      waits.push(
        this.#read(tenantId, missing).then((read) => {
          for (const [t, stats] of read) out.set(t, stats);
        }),
      );
    await Promise.all(waits);
    return out;
  }

  /**
   * Sums the terms' delta rows in one query (an index-only scan of memory_terms), caches them, and
   * shares the read in flight; terms that came in many rows are folded afterwards.
   */
  #read(tenantId: string, terms: string[]): Promise<Map<string, TermStats>> {
    const work = this.#db
      .query<{ term: string; docs: number; own: number; context: number; parts: number; last: number }>(
        `SELECT t.term, coalesce(sum(mt.docs), 0)::float8 AS docs, coalesce(sum(mt.own_chars), 0)::float8 AS own,
           coalesce(sum(mt.context_chars), 0)::float8 AS context, count(mt.term)::int AS parts,
           (SELECT coalesce(max(rid), 0) FROM memories)::float8 AS last
         FROM unnest($2::text[]) AS t(term)
         LEFT JOIN memory_terms mt ON mt.tenant_id = $1 AND mt.term = t.term
         GROUP BY t.term`,
        [tenantId, terms],
      )
      .then(({ rows }) => {
        const at = Date.now();
        if (this.#terms.size + rows.length > CACHE_MAX) this.#terms.clear();
        const read = new Map<string, TermStats>();
        const fragmented: string[] = [];
        for (const r of rows) {
          this.#maxRid = Math.max(this.#maxRid, r.last);
          // A tenant's count can only dip below zero by a bug; a negative IDF input would be worse.
          const stats = {
            docs: Math.max(0, r.docs),
            own: Math.max(0, r.own),
            context: Math.max(0, r.context),
          };
          read.set(r.term, stats);
          // A term in no document is read again by every search that has it: kept, it would be left
          // out of the query until a notice of the write that added it reached this replica, which
          // comes after that write was acknowledged (a stale count of a present term only moves an IDF).
          if (stats.docs > 0) this.#terms.set(`${tenantId}\u0000${r.term}`, { stats, at });
          if (r.parts > FOLD_PARTS) fragmented.push(r.term);
        }
        if (fragmented.length > 0) this.#fold(tenantId, fragmented);
        return read;
      });
    const keys = terms.map((t) => `${tenantId}\u0000${t}`);
    keys.forEach((key, i) => {
      this.#reading.set(
        key,
        work.then((read) => read.get(terms[i] as string) ?? { docs: 0, own: 0, context: 0 }),
      );
    });
    const done = () => {
      for (const key of keys) this.#reading.delete(key);
    };
    work.then(done, done);
    return work;
  }

  /**
   * Folds the terms' delta rows into one row each, in the background. Writers append rows meanwhile
   * (rows committed after the fold's snapshot are neither deleted nor summed, so none is lost); the
   * advisory lock keeps replicas from folding one tenant at once, and a fold that loses a race to
   * another is simply skipped, to be done by a later read.
   */
  #fold(tenantId: string, terms: string[]): void {
    const now = Date.now();
    if (now - (this.#folded.get(tenantId) ?? 0) < FOLD_EVERY_MS) return;
    if (this.#folded.size > CACHE_MAX) this.#folded.clear();
    this.#folded.set(tenantId, now);
    this.#db
      .transaction(async (client) => {
        const { rows } = await client.query<{ locked: boolean }>(
          "SELECT pg_try_advisory_xact_lock(hashtext('brain_memory_terms'), hashtext($1)) AS locked",
          [tenantId],
        );
        if (!rows[0]?.locked) return;
        await client.query(
          `WITH gone AS (
             DELETE FROM memory_terms WHERE tenant_id = $1 AND term = ANY($2::text[])
             RETURNING term, docs, own_chars, context_chars)
           INSERT INTO memory_terms (tenant_id, term, docs, own_chars, context_chars)
           SELECT $1, term, sum(docs), sum(own_chars), sum(context_chars) FROM gone
           GROUP BY term HAVING sum(docs) <> 0 OR sum(own_chars) <> 0 OR sum(context_chars) <> 0`,
          [tenantId, terms],
        );
      })
      .catch(() => undefined); // a fold is an optimisation: a failed one leaves the rows as they were
  }
}
