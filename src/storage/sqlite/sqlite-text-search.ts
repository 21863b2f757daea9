import type Database from 'better-sqlite3';
import {
  DEFAULT_LEXICAL_PARAMS,
  inverseDocumentFrequency,
  type LexicalParams,
  scoreLexical,
  type TenantTextStats,
} from '../../modules/search/lexical-score.js';
import { searchTokens } from '../../modules/search/text-tokens.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqlWhere } from './sqlite-memory-rows.js';
import { tenantMark } from './sqlite-search-text.js';
import { prepareStatement, StatementCache } from './statement-cache.js';

export interface TextHit {
  rid: number;
  /** BM25F with the tenant's own statistics (see lexical-score.ts); higher is better. */
  bm25: number;
  /** The row's change_seq when it was read: the version the vector stage may score from its cache. */
  seq: number;
}

export interface TextSearchOptions {
  /**
   * Most of the tenant's documents one query may take its short list from. Terms are kept rarest first
   * while their document frequencies fit; past it a term only scores.
   */
  matchBudget: number;
  /** How long a term's document frequency in a tenant is trusted before it is counted again. */
  dfTtlMs: number;
  /**
   * Matches re-scored per search, at least: every match when there are no more, else the best of them by
   * the IDF of the query terms each holds (see #preRanked).
   */
  rescoreMin: number;
  lexical: LexicalParams;
}

export const DEFAULT_TEXT_SEARCH_OPTIONS: TextSearchOptions = {
  matchBudget: 1000,
  dfTtlMs: 60_000,
  rescoreMin: 100,
  lexical: DEFAULT_LEXICAL_PARAMS,
};

/** Most query terms considered; more adds cost and little recall. */
const MAX_TERMS = 24;
const DF_CACHE_MAX = 20_000;
/** How far past the match budget (×) a common term's documents are counted for its IDF. */
const COMMON_TERM_CAP = 10;
/** The short list holds this many matches per result wanted, at least rescoreMin. */
const SHORT_LIST_FACTOR = 4;
/** A query term as the index holds it for the tenant (behind its mark), quoted so it is never syntax. */
function quote(mark: string, term: string): string {
  return `"${mark}${term.replaceAll('"', '""')}"`;
}

interface Candidate {
  rid: number;
  seq: number;
  own: string;
  context: string;
  speaker: string;
}

const CANDIDATE_COLUMNS =
  'm.rid AS rid, m.change_seq AS seq, m.search_text AS own, m.context_text AS context, m.speaker_text AS speaker';

/**
 * Full-text search over memories_fts with a cost budget, within one tenant: the index holds each token
 * behind its tenant's mark (migration 15) and every term is looked up so, so the counts, the matches and
 * the short list come from the tenant's rows alone and no other tenant's memories change what a tenant
 * finds or its scores. Query
 * words go through the same tokens as the index (searchTokens) and are quoted, so no user text is read
 * as FTS syntax. Terms are chosen rarest first while their document frequencies in the tenant fit the
 * match budget and ORed; a short list of their matches is scored with BM25F over the memory's own text
 * and its session context, with the tenant's document count, lengths and term frequencies. When even
 * the rarest term is too common, the newest documents holding all of the rarest terms come first, then
 * the newest matches of the rarest term.
 */
export class SqliteTextSearch {
  readonly #options: TextSearchOptions;
  readonly #df = new Map<string, { n: number; at: number }>();
  readonly #countTerm: Database.Statement;
  readonly #tenantStats: Database.Statement;
  readonly #statements: StatementCache;

  constructor(db: SqliteDatabase, options: Partial<TextSearchOptions> = {}) {
    this.#options = { ...DEFAULT_TEXT_SEARCH_OPTIONS, ...options };
    this.#statements = new StatementCache(db);
    this.#countTerm = prepareStatement(
      db,
      'SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)',
    ).pluck();
    // Lengths in characters: BM25 needs only a document's length relative to the average. Kept by the
    // store with the index (search_stats), so reading them is one row.
    this.#tenantStats = prepareStatement(
      db,
      `SELECT documents, CASE WHEN documents > 0 THEN own_chars * 1.0 / documents ELSE 0 END AS averageOwnLength,
         CASE WHEN documents > 0 THEN context_chars * 1.0 / documents ELSE 0 END AS averageContextLength
       FROM search_stats WHERE tenant_id = ?`,
    );
  }

  search(tenantId: string, text: string, where: SqlWhere, limit: number): TextHit[] {
    const terms = [...new Set(searchTokens(text))];
    if (terms.length === 0) return [];
    const mark = tenantMark(tenantId);
    const ranked = terms
      .slice(0, MAX_TERMS)
      .map((term) => ({ term, df: this.#documentFrequency(tenantId, mark, term) }))
      .filter((t) => t.df > 0)
      .sort((a, b) => a.df - b.df);
    if (ranked.length === 0) return [];
    const stats = this.#statsOf(tenantId);
    const idf = new Map(
      ranked.map((t) => [t.term, inverseDocumentFrequency(stats.documents, Math.min(stats.documents, t.df))]),
    );
    const chosen: { term: string; df: number }[] = [];
    let matches = 0;
    for (const t of ranked) {
      if (matches + t.df > this.#options.matchBudget) break;
      chosen.push(t);
      matches += t.df;
    }
    const candidates =
      chosen.length > 0
        ? this.#shortList(mark, chosen, matches, idf, where, limit)
        : this.#commonTerms(
            mark,
            ranked.slice(0, 3).map((t) => t.term),
            where,
            limit,
          );
    // The budget bounds which terms pick candidates; every term of the query scores them.
    return this.#rescore(
      ranked.map((t) => t.term),
      idf,
      stats,
      candidates,
    ).slice(0, limit);
  }

  /** The candidates scored with BM25F and the tenant's statistics, best first (ties: newest first). */
  #rescore(
    terms: string[],
    idf: Map<string, number>,
    stats: TenantTextStats,
    candidates: Candidate[],
  ): TextHit[] {
    if (candidates.length === 0) return [];
    const scores = scoreLexical(terms, idf, stats, candidates, this.#options.lexical);
    return candidates
      .map((c, i) => ({ rid: c.rid, bm25: scores[i] ?? 0, seq: c.seq }))
      .filter((h) => h.bm25 > 0)
      .sort((a, b) => b.bm25 - a.bm25 || b.rid - a.rid);
  }

  /**
   * The short list of the chosen terms' matches that pass `where`. When they are no more than it holds,
   * all of them, in one query. Otherwise the matches are pre-ranked from the index alone (#preRanked) and
   * read best first, a short list at a time, until `limit` of them pass the filter or none are left.
   */
  #shortList(
    mark: string,
    chosen: { term: string; df: number }[],
    matches: number,
    idf: Map<string, number>,
    where: SqlWhere,
    limit: number,
  ): Candidate[] {
    const want = Math.max(this.#options.rescoreMin, limit * SHORT_LIST_FACTOR);
    if (matches <= want) {
      const match = chosen.map((t) => quote(mark, t.term)).join(' OR ');
      return this.#statements
        .get(
          `SELECT ${CANDIDATE_COLUMNS} FROM memories_fts JOIN memories m ON m.rid = memories_fts.rowid
           WHERE memories_fts MATCH ? AND ${where.sql}`,
        )
        .all(match, ...where.params) as Candidate[];
    }
    const order = this.#preRanked(mark, chosen, idf);
    const read = this.#statements.get(
      `SELECT ${CANDIDATE_COLUMNS} FROM json_each(?) j CROSS JOIN memories m ON m.rid = j.value WHERE ${where.sql}`,
    );
    const passing: Candidate[] = [];
    for (let at = 0; at < order.length && passing.length < limit; at += want)
      passing.push(...(read.all(JSON.stringify(order.slice(at, at + want)), ...where.params) as Candidate[]));
    return passing;
  }

  /**
   * The chosen terms' matches, best first by the IDF of the terms each holds (one in the memory's own
   * text counts fully, one in its context by the context weight), newest first among equals. It reads
   * rowids only, each term's in each column once (at most the match budget of them), and uses nothing
   * but the tenant's rows and statistics: the index's own BM25 would rank with the counts and lengths
   * of every tenant.
   */
  #preRanked(mark: string, chosen: { term: string }[], idf: Map<string, number>): number[] {
    const rowids = this.#statements.get('SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?').pluck();
    const score = new Map<number, number>();
    for (const { term } of chosen) {
      const weight = idf.get(term) ?? 0;
      for (const [column, share] of [
        ['search_text', 1],
        ['context_text', this.#options.lexical.contextWeight],
      ] as const) {
        for (const rid of rowids.all(`${column} : ${quote(mark, term)}`) as number[])
          score.set(rid, (score.get(rid) ?? 0) + weight * share);
      }
    }
    return [...score.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0]).map(([rid]) => rid);
  }

  /**
   * Every term is common (each matches more of the tenant's documents than the budget). Scoring all of
   * their matches would cost more than the rest of a recall at 100k memories, so these matches go newest
   * first instead: documents holding all of the rarest terms, then those holding the rarest one.
   */
  #commonTerms(mark: string, rarest: string[], where: SqlWhere, limit: number): Candidate[] {
    const found: Candidate[] = [];
    if (rarest.length > 1)
      found.push(...this.#newest(rarest.map((t) => quote(mark, t)).join(' AND '), where, limit));
    if (found.length >= limit) return found;
    const seen = new Set(found.map((h) => h.rid));
    for (const c of this.#newest(quote(mark, rarest[0] as string), where, limit)) {
      if (found.length >= limit) break;
      if (!seen.has(c.rid)) found.push(c);
    }
    return found;
  }

  /** The newest matches that pass `where`: FTS5 walks its index backwards and stops at `limit`. */
  #newest(match: string, where: SqlWhere, limit: number): Candidate[] {
    return this.#statements
      .get(
        `SELECT ${CANDIDATE_COLUMNS} FROM memories_fts JOIN memories m ON m.rid = memories_fts.rowid
         WHERE memories_fts MATCH ? AND ${where.sql}
         ORDER BY memories_fts.rowid DESC LIMIT ?`,
      )
      .all(match, ...where.params, limit) as Candidate[];
  }

  /**
   * The tenant's documents holding the term, counted once and cached for dfTtlMs: it decides which terms
   * fit the match budget, and gives their IDF. Counting stops at COMMON_TERM_CAP times the budget: past
   * that a term picks no candidates and its IDF is small either way, while walking its whole posting list
   * would cost milliseconds. The count is of the tenant's rows only, so it is the same whatever other
   * tenants hold.
   */
  #documentFrequency(tenantId: string, mark: string, term: string): number {
    const key = `${tenantId}\u0000${term}`;
    const now = Date.now();
    const cached = this.#df.get(key);
    if (cached && now - cached.at < this.#options.dfTtlMs) return cached.n;
    const n = this.#countTerm.get(quote(mark, term), this.#options.matchBudget * COMMON_TERM_CAP) as number;
    if (this.#df.size >= DF_CACHE_MAX) this.#df.clear();
    this.#df.set(key, { n, at: now });
    return n;
  }

  /** The tenant's indexed documents and average field lengths. */
  #statsOf(tenantId: string): TenantTextStats {
    return (
      (this.#tenantStats.get(tenantId) as TenantTextStats | undefined) ?? {
        documents: 0,
        averageOwnLength: 0,
        averageContextLength: 0,
      }
    );
  }
}
