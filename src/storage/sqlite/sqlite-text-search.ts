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
   * Most documents one BM25-ranked query may match. FTS5 scores every match before it sorts, so the
   * cost of a query grows with the matches of its commonest term; terms past this budget are dropped.
   */
  matchBudget: number;
  /** How long a term's document frequency is trusted before it is counted again. */
  dfTtlMs: number;
  /**
   * Index-ranked matches re-scored per search, at least. The index ranks by its own statistics over
   * every tenant; the short list is scored again with the tenant's, so it is taken wide.
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
/** How many index-ranked matches are checked against the filter per result wanted. */
const SHORT_LIST_FACTOR = 4;
/** Column weights of the index's own ranking (own text, context), used only to pick the short list. */
const INDEX_RANK = 'bm25(memories_fts, 1.0, 0.5)';

function quote(term: string): string {
  return `"${term.replaceAll('"', '""')}"`;
}

interface Candidate {
  rid: number;
  seq: number;
  own: string;
  context: string;
  speaker: string;
}

/**
 * Full-text search over memories_fts with a cost budget, scored with the tenant's own statistics. Query
 * words go through the same tokens as the index (searchTokens) and are quoted, so no user text is read
 * as FTS syntax. Terms are chosen rarest first while their document frequencies fit the match budget and
 * ORed; the index's own BM25 picks a wide short list, which is filtered and scored again with BM25F
 * over the memory's own text and its session context, with the tenant's document count, lengths and
 * term frequencies: another tenant's memories never change a score. When even the rarest term is too
 * common, the newest documents holding all of the rarest terms come first, then the newest matches of
 * the rarest term.
 */
export class SqliteTextSearch {
  readonly #options: TextSearchOptions;
  readonly #df = new Map<string, { n: number; at: number }>();
  readonly #tenantDf = new Map<string, { n: number; at: number }>();
  readonly #countTerm: Database.Statement;
  readonly #countTenantTerm: Database.Statement;
  readonly #tenantStats: Database.Statement;
  readonly #statements: StatementCache;

  constructor(db: SqliteDatabase, options: Partial<TextSearchOptions> = {}) {
    this.#options = { ...DEFAULT_TEXT_SEARCH_OPTIONS, ...options };
    this.#statements = new StatementCache(db);
    this.#countTerm = prepareStatement(
      db,
      'SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)',
    );
    this.#countTenantTerm = prepareStatement(
      db,
      `SELECT count(*) FROM memories_fts f JOIN memories m ON m.rid = f.rowid
         WHERE memories_fts MATCH ? AND m.tenant_id = ?`,
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
    const candidates =
      chosen.length > 0
        ? this.#ranked(chosen.map(quote).join(' OR '), where, limit)
        : this.#commonTerms(
            ranked.slice(0, 3).map((t) => t.term),
            where,
            limit,
          );
    // The budget bounds which terms pick candidates; every term of the query scores them.
    return this.#rescore(
      tenantId,
      ranked.map((t) => t.term),
      candidates,
    ).slice(0, limit);
  }

  /** The candidates scored with BM25F and the tenant's statistics, best first (ties: newest first). */
  #rescore(tenantId: string, terms: string[], candidates: Candidate[]): TextHit[] {
    if (candidates.length === 0) return [];
    const stats = this.#statsOf(tenantId);
    const idf = new Map<string, number>();
    for (const term of terms) {
      const df = Math.min(stats.documents, this.#tenantFrequency(tenantId, term));
      idf.set(term, inverseDocumentFrequency(stats.documents, df));
    }
    const scores = scoreLexical(terms, idf, stats, candidates, this.#options.lexical);
    return candidates
      .map((c, i) => ({ rid: c.rid, bm25: scores[i] ?? 0, seq: c.seq }))
      .filter((h) => h.bm25 > 0)
      .sort((a, b) => b.bm25 - a.bm25 || b.rid - a.rid);
  }

  /**
   * Every term is common (each matches more documents than the budget). Ranking by the index would
   * first count each term's documents by walking its whole posting list, which cost more than the rest
   * of a recall at 100k memories, so these matches go newest first instead: documents holding all of
   * the rarest terms, then those holding the rarest one.
   */
  #commonTerms(rarest: string[], where: SqlWhere, limit: number): Candidate[] {
    const found: Candidate[] = [];
    if (rarest.length > 1) found.push(...this.#newest(rarest.map(quote).join(' AND '), where, limit));
    if (found.length >= limit) return found;
    const seen = new Set(found.map((h) => h.rid));
    for (const c of this.#newest(quote(rarest[0] as string), where, limit)) {
      if (found.length >= limit) break;
      if (!seen.has(c.rid)) found.push(c);
    }
    return found;
  }

  /**
   * The best matches that pass `where`, by the index's BM25, as a short list wide enough to re-score.
   * Joining every match to its memories row to check the filter costs more than ranking the matches,
   * so the index alone ranks first and only its top few are checked; when too few of those pass (other
   * tenants or projects hold the best matches) the joined query answers instead.
   */
  #ranked(match: string, where: SqlWhere, limit: number): Candidate[] {
    const want = Math.max(this.#options.rescoreMin, limit * SHORT_LIST_FACTOR);
    const top = this.#statements
      .get(`SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY ${INDEX_RANK} LIMIT ?`)
      .pluck()
      .all(match, want) as number[];
    if (top.length === 0) return [];
    const passing = this.#statements
      .get(
        `SELECT m.rid AS rid, m.change_seq AS seq, m.search_text AS own, m.context_text AS context, m.speaker_text AS speaker
         FROM json_each(?) j CROSS JOIN memories m ON m.rid = j.value WHERE ${where.sql}`,
      )
      .all(JSON.stringify(top), ...where.params) as Candidate[];
    if (passing.length >= limit || top.length < want) return passing;
    return this.#statements
      .get(
        `SELECT m.rid AS rid, m.change_seq AS seq, m.search_text AS own, m.context_text AS context, m.speaker_text AS speaker
         FROM memories_fts JOIN memories m ON m.rid = memories_fts.rowid
         WHERE memories_fts MATCH ? AND ${where.sql}
         ORDER BY ${INDEX_RANK} LIMIT ?`,
      )
      .all(match, ...where.params, want) as Candidate[];
  }

  /** The newest matches that pass `where`: FTS5 walks its index backwards and stops at `limit`. */
  #newest(match: string, where: SqlWhere, limit: number): Candidate[] {
    return this.#statements
      .get(
        `SELECT m.rid AS rid, m.change_seq AS seq, m.search_text AS own, m.context_text AS context, m.speaker_text AS speaker
         FROM memories_fts JOIN memories m ON m.rid = memories_fts.rowid
         WHERE memories_fts MATCH ? AND ${where.sql}
         ORDER BY memories_fts.rowid DESC LIMIT ?`,
      )
      .all(match, ...where.params, limit) as Candidate[];
  }

  /**
   * Documents (of all tenants) holding the term, counted once and cached for dfTtlMs: it decides which
   * terms fit the match budget. Counting stops just past the budget (a term over it is dropped whatever
   * its count).
   */
  #documentFrequency(term: string): number {
    const now = Date.now();
    const cached = this.#df.get(term);
    const budget = this.#options.matchBudget;
    if (cached && now - cached.at < this.#options.dfTtlMs) return cached.n;
    const { n } = this.#countTerm.get(quote(term), budget + 1) as { n: number };
    if (this.#df.size >= DF_CACHE_MAX) this.#df.clear();
    this.#df.set(term, { n, at: now });
    return n;
  }

  /**
   * The tenant's documents holding the term, for its IDF; cached like the global counts. A term within
   * the match budget is counted in the tenant exactly. One over it (it only scores, it picks no
   * candidates) is counted across tenants up to COMMON_TERM_CAP, an upper bound of the tenant's count:
   * exact in a one-tenant store of up to that size, and past it the IDF of a term that common is small
   * either way, while walking its whole posting list would cost milliseconds.
   */
  #tenantFrequency(tenantId: string, term: string): number {
    const key = `${tenantId}\u0000${term}`;
    const now = Date.now();
    const cached = this.#tenantDf.get(key);
    if (cached && now - cached.at < this.#options.dfTtlMs) return cached.n;
    const n =
      this.#documentFrequency(term) > this.#options.matchBudget
        ? (this.#countTerm.get(quote(term), this.#options.matchBudget * COMMON_TERM_CAP) as { n: number }).n
        : (this.#countTenantTerm.get(quote(term), tenantId) as number);
    if (this.#tenantDf.size >= DF_CACHE_MAX) this.#tenantDf.clear();
    this.#tenantDf.set(key, { n, at: now });
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
