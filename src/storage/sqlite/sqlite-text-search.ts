import type Database from 'better-sqlite3';
import { queryTerms, wordTokens } from '../../modules/search/text-tokens.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqlWhere } from './sqlite-memory-rows.js';
import { StatementCache } from './statement-cache.js';

export interface TextHit {
  rid: number;
  bm25: number;
}

export interface TextSearchOptions {
  /**
   * Most documents one BM25-ranked query may match. FTS5 scores every match before it sorts, so the
   * cost of a query grows with the matches of its commonest term; terms past this budget are dropped.
   */
  matchBudget: number;
  /** How long a term's document frequency is trusted before it is counted again. */
  dfTtlMs: number;
}

export const DEFAULT_TEXT_SEARCH_OPTIONS: TextSearchOptions = { matchBudget: 1000, dfTtlMs: 60_000 };

/** Most query terms considered; more adds cost and little recall. */
const MAX_TERMS = 24;
const DF_CACHE_MAX = 20_000;
/** FTS5's floor for a term's IDF, so a term in over half the documents still adds a little. */
const MIN_IDF = 1e-6;
/** How many index-ranked matches are checked against the filter per result wanted. */
const SHORT_LIST_FACTOR = 2;

function quote(term: string): string {
  return `"${term.replaceAll('"', '""')}"`;
}

/**
 * Full-text search over memories_fts with a cost budget. Words are quoted so no user text is read as
 * FTS syntax. Terms are chosen rarest first while their document frequencies fit the match budget and
 * ORed, so BM25 ranks by how many and how rare the matched words are. When even the rarest term is too
 * common, the newest documents holding all of the rarest terms come first, and the newest matches of the
 * rarest term fill up the list.
 */
export class SqliteTextSearch {
  readonly #options: TextSearchOptions;
  readonly #df = new Map<string, { n: number; at: number; exact: boolean }>();
  #documents: { n: number; at: number } | null = null;
  readonly #countTerm: Database.Statement;
  readonly #countDocuments: Database.Statement;
  readonly #statements: StatementCache;

  constructor(db: SqliteDatabase, options: Partial<TextSearchOptions> = {}) {
    this.#options = { ...DEFAULT_TEXT_SEARCH_OPTIONS, ...options };
    this.#statements = new StatementCache(db);
    this.#countTerm = db.prepare(
      'SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)',
    );
    this.#countDocuments = db.prepare('SELECT count(*) FROM memories_fts_docsize').pluck();
  }

  search(text: string, where: SqlWhere, limit: number): TextHit[] {
    let terms = queryTerms(text);
    if (terms.length === 0) terms = [...new Set(wordTokens(text))];
    if (terms.length === 0) return [];
    const ranked = terms
      .slice(0, MAX_TERMS)
      .map((term) => ({ term, df: this.#documentFrequency(term) }))
      .filter((t) => t.df > 0)
      .sort((a, b) => a.df - b.df);
    if (ranked.length === 0) return [];
    const chosen: string[] = [];
    let matches = 0;
    for (const { term, df } of ranked) {
      if (matches + df > this.#options.matchBudget) break;
      chosen.push(term);
      matches += df;
    }
    if (chosen.length > 0) return this.#ranked(chosen.map(quote).join(' OR '), where, limit);
    return this.#commonTerms(
      ranked.slice(0, 3).map((t) => t.term),
      where,
      limit,
    );
  }

  /**
   * Every term is common (each matches more documents than the budget). bm25() would first count each
   * term's documents by walking its whole posting list, which cost more than the rest of a recall at
   * 100k memories, so these matches go newest first instead: documents holding all of the rarest terms,
   * then those holding the rarest one. Each is scored with the BM25 an average-length memory holding
   * those terms once would get.
   */
  #commonTerms(rarest: string[], where: SqlWhere, limit: number): TextHit[] {
    const hits: TextHit[] = [];
    if (rarest.length > 1) {
      const bm25 = this.#averageBm25(rarest);
      for (const rid of this.#newest(rarest.map(quote).join(' AND '), where, limit)) hits.push({ rid, bm25 });
    }
    if (hits.length >= limit) return hits;
    const seen = new Set(hits.map((h) => h.rid));
    const bm25 = this.#averageBm25(rarest.slice(0, 1));
    for (const rid of this.#newest(quote(rarest[0] as string), where, limit)) {
      if (hits.length >= limit) break;
      if (!seen.has(rid)) hits.push({ rid, bm25 });
    }
    return hits;
  }

  /**
   * BM25 of a document of average length holding each term once: with one occurrence and average
   * length the term-frequency factor is 1, so the score is the sum of the terms' IDF, as FTS5 computes it.
   */
  #averageBm25(terms: string[]): number {
    const documents = this.#indexedDocuments();
    let score = 0;
    for (const term of terms) {
      const df = this.#documentFrequency(term, true);
      score += Math.max(MIN_IDF, Math.log((documents - df + 0.5) / (df + 0.5)));
    }
    return score;
  }

  /**
   * The best `limit` matches that pass `where`, by BM25. Joining every match to its memories row to check
   * the filter costs more than ranking the matches, so the index alone ranks first and only its top few
   * are checked; when too few of those pass (other tenants or projects hold the best matches) the joined
   * query answers instead. The result is the same either way: any match outside the index's top list
   * ranks below all of it.
   */
  #ranked(match: string, where: SqlWhere, limit: number): TextHit[] {
    const shortList = limit * SHORT_LIST_FACTOR;
    const top = this.#statements
      .get(
        `SELECT rowid AS rid, -bm25(memories_fts, 1.0, 0.5) AS bm25 FROM memories_fts
         WHERE memories_fts MATCH ? ORDER BY bm25(memories_fts, 1.0, 0.5) LIMIT ?`,
      )
      .all(match, shortList) as TextHit[];
    if (top.length === 0) return [];
    const passing = new Set(
      (
        this.#statements
          .get(
            `SELECT m.rid AS rid FROM json_each(?) j CROSS JOIN memories m ON m.rid = j.value WHERE ${where.sql}`,
          )
          .all(JSON.stringify(top.map((h) => h.rid)), ...where.params) as { rid: number }[]
      ).map((r) => r.rid),
    );
    const hits = top.filter((h) => passing.has(h.rid));
    if (hits.length >= limit || top.length < shortList) return hits.slice(0, limit);
    return this.#statements
      .get(
        `SELECT m.rid AS rid, -bm25(memories_fts, 1.0, 0.5) AS bm25
       FROM memories_fts JOIN memories m ON m.rid = memories_fts.rowid
       WHERE memories_fts MATCH ? AND ${where.sql}
       ORDER BY bm25(memories_fts, 1.0, 0.5) LIMIT ?`,
      )
      .all(match, ...where.params, limit) as TextHit[];
  }

  /** Rowids of the newest matches that pass `where`: FTS5 walks its index backwards and stops at `limit`. */
  #newest(match: string, where: SqlWhere, limit: number): number[] {
    return this.#statements
      .get(
        `SELECT m.rid AS rid FROM memories_fts JOIN memories m ON m.rid = memories_fts.rowid
         WHERE memories_fts MATCH ? AND ${where.sql}
         ORDER BY memories_fts.rowid DESC LIMIT ?`,
      )
      .pluck()
      .all(match, ...where.params, limit) as number[];
  }

  /**
   * Documents (of all tenants) holding the term, counted once and cached for dfTtlMs. Counting stops
   * just past the match budget (a term over it is dropped whatever its count) unless `exact` is asked.
   */
  #documentFrequency(term: string, exact = false): number {
    const now = Date.now();
    const cached = this.#df.get(term);
    const budget = this.#options.matchBudget;
    if (cached && now - cached.at < this.#options.dfTtlMs && (!exact || cached.n <= budget || cached.exact))
      return cached.n;
    const { n } = this.#countTerm.get(quote(term), exact ? -1 : budget + 1) as { n: number };
    if (this.#df.size >= DF_CACHE_MAX) this.#df.clear();
    this.#df.set(term, { n, at: now, exact });
    return n;
  }

  /** Rows in the full-text index (every tenant's live memories), for IDF; cached like term counts. */
  #indexedDocuments(): number {
    const now = Date.now();
    if (this.#documents && now - this.#documents.at < this.#options.dfTtlMs) return this.#documents.n;
    const n = this.#countDocuments.get() as number;
    this.#documents = { n, at: now };
    return n;
  }
}
