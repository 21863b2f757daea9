import {
  DEFAULT_LEXICAL_PARAMS,
  inverseDocumentFrequency,
  scoreLexical,
  type TenantTextStats,
} from '../../modules/search/lexical-score.js';
import { searchTokens } from '../../modules/search/text-tokens.js';
import type { PgDatabase } from './pg-database.js';
import { PG_MEMORY_COLUMNS, type PgMemoryRow, type PgWhere, vectorBinary } from './pg-memory-rows.js';
import { type QueryVector, similaritySql } from './pg-vector-search.js';

/** Most documents the candidate query may rank; terms are chosen rarest first within it (as on SQLite). */
const MATCH_BUDGET = 1000;
const MAX_TERMS = 24;
const SHORT_LIST = 100;
/** How long a tenant's term counts and statistics are trusted (another replica's write also drops them). */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 20_000;
/**
 * Reading one match through the GIN index costs about what testing SHORT_LIST / SPARSE_FACTOR rows
 * does when walking newest first (measured at 100,000 memories: 1,200 matches took 3.9 ms walking and
 * under 1 ms through the index).
 */
const SPARSE_FACTOR = 40;
/** Most matches counted per term (10 × the match budget, as on SQLite). */
const COUNT_CAP = MATCH_BUDGET * 10;

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
  readonly #df = new Map<string, { n: number; at: number }>();
  readonly #stats = new Map<string, { stats: TenantTextStats; at: number }>();

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  /** Drops what is cached of a tenant (a write here or, through the change bus, on another replica). */
  invalidate(tenantId: string): void {
    if (tenantId === '*') {
      this.#stats.clear();
      this.#df.clear();
      return;
    }
    this.#stats.delete(tenantId);
    const prefix = `${tenantId}\u0000`;
    for (const key of this.#df.keys()) if (key.startsWith(prefix)) this.#df.delete(key);
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
    const [df, stats] = await Promise.all([this.#frequencies(tenantId, terms), this.#statsOf(tenantId)]);
    const ranked = terms
      .filter((t) => (df.get(t) ?? 0) > 0)
      .sort((a, b) => (df.get(a) ?? 0) - (df.get(b) ?? 0));
    if (ranked.length === 0) return [];
    const chosen: string[] = [];
    let matches = 0;
    for (const t of ranked) {
      const n = df.get(t) ?? 0;
      if (matches + n > MATCH_BUDGET && chosen.length > 0) break;
      chosen.push(t);
      matches += n;
    }
    const common = matches > MATCH_BUDGET;
    const n = where.params.length;
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
    // The short list comes with its rows' columns and similarities (computed for the rows kept only).
    const similarity = queryVector
      ? similaritySql('m.rid', `$${n + 3}`, queryVector.vector.length, `$${n + 4}`)
      : 'NULL::float8';
    const { rows } = await this.#db.query<Candidate>(
      `SELECT ${PG_MEMORY_COLUMNS}, m.search_text AS own, m.context_text AS context, m.speaker_text AS speaker,
         ${similarity} AS similarity
       FROM memories m, to_tsquery('simple', $${n + 1}) q(q)
       WHERE ${where.sql} AND m.search_tsv @@ q.q ORDER BY ${order} LIMIT $${n + 2}`,
      [
        ...where.params,
        chosen.map(term).join(' | '),
        Math.max(SHORT_LIST, limit * 4),
        ...(queryVector ? [vectorBinary(queryVector.vector), queryVector.model] : []),
      ],
    );
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

  /** The tenant's live documents holding each term, cached; the missing ones counted in one query. */
  async #frequencies(tenantId: string, terms: string[]): Promise<Map<string, number>> {
    const now = Date.now();
    const out = new Map<string, number>();
    const missing: string[] = [];
    for (const t of terms) {
      const cached = this.#df.get(`${tenantId}\u0000${t}`);
      if (cached && now - cached.at < CACHE_TTL_MS) out.set(t, cached.n);
      else missing.push(t);
    }
    if (missing.length > 0) {
      // Counting stops at COUNT_CAP: past it a term is common whatever its count, its IDF small either
      // way, while counting every match would read each row (as SQLite's budgeted counts do).
      const { rows } = await this.#db.query<{ t: string; n: string }>(
        `SELECT t, (SELECT count(*) FROM (SELECT 1 FROM memories m
                    WHERE m.tenant_id = $1 AND m.deleted_at IS NULL AND m.search_tsv @@ to_tsquery('simple', quote_literal(t))
                    LIMIT ${COUNT_CAP}) c) AS n
         FROM unnest($2::text[]) AS t`,
        [tenantId, missing],
      );
      if (this.#df.size + rows.length > CACHE_MAX) this.#df.clear();
      for (const r of rows) {
        out.set(r.t, Number(r.n));
        this.#df.set(`${tenantId}\u0000${r.t}`, { n: Number(r.n), at: now });
      }
    }
    return out;
  }

  async #statsOf(tenantId: string): Promise<TenantTextStats> {
    const cached = this.#stats.get(tenantId);
    if (cached && Date.now() - cached.at < CACHE_TTL_MS) return cached.stats;
    const { rows } = await this.#db.query<{ documents: string; own: number | null; context: number | null }>(
      `SELECT count(*) AS documents, avg(length(search_text))::float8 AS own, avg(length(context_text))::float8 AS context
       FROM memories WHERE tenant_id = $1 AND deleted_at IS NULL`,
      [tenantId],
    );
    const r = rows[0];
    // Lengths in characters on SQLite; here in characters too (BM25 needs only the ratio to the mean).
    const stats = {
      documents: Number(r?.documents ?? 0),
      averageOwnLength: r?.own ?? 0,
      averageContextLength: r?.context ?? 0,
    };
    this.#stats.set(tenantId, { stats, at: Date.now() });
    return stats;
  }
}
