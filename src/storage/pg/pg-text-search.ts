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
  /** Counts and statistics being read now, shared by every recall that needs them meanwhile. */
  readonly #counting = new Map<string, Promise<number>>();
  readonly #statsInFlight = new Map<string, Promise<TenantTextStats>>();

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  /**
   * A write here or, through the change bus, on another replica: the tenant's statistics and counts
   * become stale (used while they are read again), and a term counted in no document is forgotten, since
   * the write may have added the first.
   */
  invalidate(tenantId: string): void {
    const prefix = `${tenantId}\u0000`;
    for (const [key, value] of this.#stats) if (tenantId === '*' || key === tenantId) value.at = 0;
    for (const [key, value] of this.#df) {
      if (tenantId !== '*' && !key.startsWith(prefix)) continue;
      if (value.n === 0) this.#df.delete(key);
      else value.at = 0;
    }
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

  /**
   * The tenant's live documents holding each term. A cached count younger than the TTL is used; an
   * older one (or one a write made stale) is used too while one refresh runs in the background, since
   * a count that moved by a few writes changes an IDF by as little. A term never counted, or counted
   * as in no document before a write (which may have added it), is counted before answering. Counts
   * in flight are shared: a burst of recalls asks PostgreSQL once per term, not once per recall.
   */
  async #frequencies(tenantId: string, terms: string[]): Promise<Map<string, number>> {
    const now = Date.now();
    const out = new Map<string, number>();
    const waits: Promise<void>[] = [];
    const missing: string[] = [];
    const stale: string[] = [];
    for (const t of terms) {
      const key = `${tenantId}\u0000${t}`;
      const cached = this.#df.get(key);
      if (cached) {
        out.set(t, cached.n);
        if (now - cached.at >= CACHE_TTL_MS && !this.#counting.has(key)) stale.push(t);
        continue;
      }
      const inFlight = this.#counting.get(key);
      if (inFlight) waits.push(inFlight.then((n) => void out.set(t, n)));
      else missing.push(t);
    }
    if (stale.length > 0) this.#count(tenantId, stale).catch(() => undefined); // refreshed for the next recall; this one uses the old
    if (missing.length > 0)
      waits.push(
        this.#count(tenantId, missing).then((counts) => {
          for (const [t, n] of counts) out.set(t, n);
        }),
      );
    await Promise.all(waits);
    return out;
  }

  /** Counts terms in one query (stopping at COUNT_CAP each), caches them, and shares the work in flight. */
  #count(tenantId: string, terms: string[]): Promise<Map<string, number>> {
    // Counting stops at COUNT_CAP: past it a term is common whatever its count, its IDF small either
    // way, while counting every match would read each row (as SQLite's budgeted counts do).
    const work = this.#db
      .query<{ t: string; n: string }>(
        `SELECT t, (SELECT count(*) FROM (SELECT 1 FROM memories m
                    WHERE m.tenant_id = $1 AND m.deleted_at IS NULL AND m.search_tsv @@ to_tsquery('simple', quote_literal(t))
                    LIMIT ${COUNT_CAP}) c) AS n
         FROM unnest($2::text[]) AS t`,
        [tenantId, terms],
      )
      .then(({ rows }) => {
        const at = Date.now();
        if (this.#df.size + rows.length > CACHE_MAX) this.#df.clear();
        const counts = new Map<string, number>();
        for (const r of rows) {
          counts.set(r.t, Number(r.n));
          this.#df.set(`${tenantId}\u0000${r.t}`, { n: Number(r.n), at });
        }
        return counts;
      });
    const keys = terms.map((t) => `${tenantId}\u0000${t}`);
    keys.forEach((key, i) => {
      this.#counting.set(
        key,
        work.then((counts) => counts.get(terms[i] as string) ?? 0),
      );
    });
    const done = () => {
      for (const key of keys) this.#counting.delete(key);
    };
    work.then(done, done);
    return work;
  }

  /** The tenant's document count and mean lengths, cached like the counts (a stale one refreshes behind). */
  async #statsOf(tenantId: string): Promise<TenantTextStats> {
    const cached = this.#stats.get(tenantId);
    if (cached && Date.now() - cached.at < CACHE_TTL_MS) return cached.stats;
    let pending = this.#statsInFlight.get(tenantId);
    if (!pending) {
      pending = this.#readStats(tenantId).finally(() => this.#statsInFlight.delete(tenantId));
      this.#statsInFlight.set(tenantId, pending);
    }
    if (cached) {
      pending.catch(() => undefined);
      return cached.stats;
    }
    return pending;
  }

  async #readStats(tenantId: string): Promise<TenantTextStats> {
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
