import { createHash } from 'node:crypto';

/** Why an episode was kept as a long-term memory. */
export type ConsolidationReason = 'importance' | 'preference' | 'decision' | 'repetition';

/** What the rules see of one episode. */
export interface EpisodeFacts {
  role: string;
  content: string;
  importance: number | null;
  /** How many episodes of the session (this one included) have the same normalised content. */
  occurrences: number;
}

/** The rules' answer: keep it (why, and as which memory type), or let it go. */
export type ConsolidationDecision =
  | { keep: true; reason: ConsolidationReason; type: string }
  | { keep: false };

// Said by the user: a preference an assistant states about itself is no preference of the user's.
const PREFERENCE_PATTERNS = [
  /\bi prefer\b/,
  /\bi (?:really )?like\b/,
  /\bi love\b/,
  /\bi hate\b/,
  /\bi (?:don't|do not|dont) like\b/,
  /\bmy favou?rite\b/,
  /\bplease (?:always|never)\b/,
];

const DECISION_PATTERNS = [
  /\bwe decided\b/,
  /\bi decided\b/,
  /\blet's go with\b/,
  /\bwe'll use\b/,
  /\bwe will use\b/,
  /\bdecision:/,
  /\bagreed to\b/,
];

/**
 * The text episodes are compared by: Unicode-normalised, lower case, curly apostrophes straightened,
 * whitespace collapsed, trailing punctuation dropped ("I prefer tabs." and "i prefer  tabs" are one).
 */
export function normaliseContent(content: string): string {
  return content
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[\s.!?,;:]+$/u, '');
}

/** A short stable digest of the normalised content: repeats share it, and so does their memory's key. */
export function contentDigest(content: string): string {
  return createHash('sha256').update(normaliseContent(content)).digest('hex').slice(0, 32);
}

function matches(patterns: RegExp[], text: string): boolean {
  return patterns.some((p) => p.test(text));
}

/**
 * The deterministic consolidation rules, first match wins: explicit importance at or above the
 * threshold; a preference the user states; a decision (user or assistant); content repeated in the
 * session (user or assistant; a tool's or the system's repeated output is noise). The memory type
 * follows the content: preferences are `user_preferences`, decisions `decision`, the rest `fact`.
 */
export function decideConsolidation(
  episode: EpisodeFacts,
  options: { importanceThreshold: number },
): ConsolidationDecision {
  const text = normaliseContent(episode.content);
  const conversational = episode.role === 'user' || episode.role === 'assistant';
  const preference = episode.role === 'user' && matches(PREFERENCE_PATTERNS, text);
  const decision = conversational && matches(DECISION_PATTERNS, text);
  const type = preference ? 'user_preferences' : decision ? 'decision' : 'fact';
  if (episode.importance !== null && episode.importance >= options.importanceThreshold)
    return { keep: true, reason: 'importance', type };
  if (preference) return { keep: true, reason: 'preference', type };
  if (decision) return { keep: true, reason: 'decision', type };
  if (conversational && episode.occurrences >= 2) return { keep: true, reason: 'repetition', type };
  return { keep: false };
}

/** Lower-case word tokens (letters and digits of any script), for the buffer's lexical match. */
export function tokens(text: string): Set<string> {
  return new Set(
    text
      .normalize('NFKC')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? [],
  );
}

/**
 * How well an episode answers a query, times how recent it is: the share of the query's tokens the
 * content holds, times exp(-ln 2 × age / half-life). An episode from the future counts as new.
 */
export function episodeScore(query: Set<string>, content: string, ageMs: number, halfLifeMs: number): number {
  if (query.size === 0) return 0;
  const words = tokens(content);
  let shared = 0;
  for (const t of query) if (words.has(t)) shared++;
  const decay = Math.exp((-Math.LN2 * Math.max(0, ageMs)) / halfLifeMs);
  return (shared / query.size) * decay;
}
