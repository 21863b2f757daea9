/**
 * BM25F over two fields of a memory: its own text (content and tags) and its context (the text of the
 * memories next to it in the same session). Term frequencies of both fields are length-normalised,
 * weighted and summed before saturation, so a term in the context counts less than one in the memory
 * and never twice. Statistics are the tenant's own: another tenant's memories change no score.
 */
export interface LexicalParams {
  k1: number;
  b: number;
  /** Weight of a term found in the context instead of the memory itself. */
  contextWeight: number;
  /**
   * A memory whose speaker the query names scores this much more (×(1 + boost)): "what did Caroline
   * say about…" is most often answered by what Caroline said.
   */
  speakerBoost: number;
}

/**
 * Measured on the LoCoMo dev file (docs/QUALITY.md): context weight 0.5 found the most evidence (0.3:
 * 0.696, 0.5: 0.705, 0.7: 0.701, 1.0: 0.684 recall@10); k1 and b stay at the textbook 1.2 and 0.75
 * (other pairs moved the figure by under a point, too little to tune on five conversations).
 */
export const DEFAULT_LEXICAL_PARAMS: LexicalParams = {
  k1: 1.2,
  b: 0.75,
  contextWeight: 0.5,
  speakerBoost: 0.3,
};

export interface TenantTextStats {
  /** Live memories of the tenant. */
  documents: number;
  averageOwnLength: number;
  averageContextLength: number;
}

/** A candidate's fields as stored: space-separated search tokens. */
export interface LexicalDocument {
  own: string;
  context: string;
  /** Tokens of who said it ('' when unknown). */
  speaker: string;
}

/** Okapi IDF with the +1 that keeps it positive for a term in over half of the documents. */
export function inverseDocumentFrequency(documents: number, df: number): number {
  return Math.log(1 + (documents - df + 0.5) / (df + 0.5));
}

function counts(tokens: string, wanted: ReadonlySet<string>): { tf: Map<string, number>; length: number } {
  const tf = new Map<string, number>();
  if (tokens.length === 0) return { tf, length: 0 };
  const list = tokens.split(' ');
  for (const token of list) if (wanted.has(token)) tf.set(token, (tf.get(token) ?? 0) + 1);
  return { tf, length: list.length };
}

/** BM25F score of each document for the query terms, given the tenant's document frequencies. */
export function scoreLexical(
  terms: readonly string[],
  idf: ReadonlyMap<string, number>,
  stats: TenantTextStats,
  documents: readonly LexicalDocument[],
  params: LexicalParams = DEFAULT_LEXICAL_PARAMS,
): number[] {
  const wanted = new Set(terms);
  const { k1, b, contextWeight } = params;
  const avgOwn = Math.max(1, stats.averageOwnLength);
  const avgContext = Math.max(1, stats.averageContextLength);
  return documents.map((doc) => {
    const own = counts(doc.own, wanted);
    const context = counts(doc.context, wanted);
    const ownNorm = 1 - b + (b * own.length) / avgOwn;
    const contextNorm = 1 - b + (b * context.length) / avgContext;
    let score = 0;
    for (const term of wanted) {
      const tf =
        (own.tf.get(term) ?? 0) / ownNorm + (contextWeight * (context.tf.get(term) ?? 0)) / contextNorm;
      if (tf > 0) score += (idf.get(term) ?? 0) * ((tf * (k1 + 1)) / (tf + k1));
    }
    if (score > 0 && doc.speaker.length > 0 && doc.speaker.split(' ').some((t) => wanted.has(t)))
      score *= 1 + params.speakerBoost;
    return score;
  });
}
