import type { RequestScope } from '../../core/scope.js';
import { MEMORY_LIMITS } from '../memory/memory-schemas.js';
import type { MemoryService } from '../memory/memory-service.js';
import { type EvalConversation, type EvalTurn, sessionOfTurn } from './locomo-data.js';

/** LoCoMo's question categories; 5 (adversarial: the premise is false) is reported apart. */
export const CATEGORY_NAMES: Record<number, string> = {
  1: 'multi-hop',
  2: 'temporal',
  3: 'open-domain',
  4: 'single-hop',
  5: 'adversarial',
};
const ADVERSARIAL = 5;

/** The figures of one group of questions; `at` maps each k to its value. */
export interface EvalFigures {
  questions: number;
  /** Share of a question's evidence turns among the top k, averaged over questions. */
  turnRecall: Record<number, number>;
  /** Share of a question's evidence sessions holding one of the top k turns, averaged. */
  sessionRecall: Record<number, number>;
  /** Mean reciprocal rank of the first evidence turn within the deepest k (0 when none is there). */
  mrr: number;
}

export interface EvalReport {
  conversations: number;
  turns: number;
  /** Questions scored; those whose evidence names no turn of the conversation are left out. */
  questions: number;
  skipped: number;
  ks: number[];
  /** Categories 1–4: the headline figures. */
  overall: EvalFigures;
  /** Every question, category 5 included. */
  all: EvalFigures;
  byCategory: Record<string, EvalFigures>;
  /** How recall ran: how many queries were hybrid, and why the others were text-only. */
  modes: Record<string, number>;
  latency: { rememberPerSecond: number; recallMs: { p50: number; p95: number; p99: number } };
}

export interface EvalProgress {
  phase: 'remember' | 'recall';
  done: number;
  total: number;
}

export interface EvalOptions {
  ks: number[];
  onProgress?: (progress: EvalProgress) => void;
  /** Waits until every stored memory is embedded (a background queue may still be catching up). */
  settle?: () => Promise<void>;
}

/**
 * Memory text of a turn: who said it, what was said, the caption of a photo it shares, and the day of
 * its session ("1:56 pm on 8 May, 2023" → "on 8 May, 2023"), as a user's transcript line would carry it.
 */
export function turnContent(turn: EvalTurn, date: string | null): string {
  const photo = turn.caption ? ` [shares a photo: ${turn.caption}]` : '';
  const day = date ? ` (on ${date.replace(/^.* on /, '')})` : '';
  return `${turn.speaker}: ${turn.text}${photo}${day}`;
}

interface Scored {
  category: number;
  turnRecall: number[];
  sessionRecall: number[];
  reciprocalRank: number;
}

/** How one question's ranking scores against its evidence, at each k. */
export function scoreRanking(ranked: readonly string[], evidence: readonly string[], ks: readonly number[]) {
  const wanted = new Set(evidence);
  const sessions = new Set(evidence.map(sessionOfTurn));
  const deepest = Math.max(...ks);
  const first = ranked.slice(0, deepest).findIndex((id) => wanted.has(id));
  return {
    turnRecall: ks.map((k) => ranked.slice(0, k).filter((id) => wanted.has(id)).length / wanted.size),
    sessionRecall: ks.map((k) => {
      const found = new Set(ranked.slice(0, k).map(sessionOfTurn));
      return [...sessions].filter((s) => found.has(s)).length / sessions.size;
    }),
    reciprocalRank: first < 0 ? 0 : 1 / (first + 1),
  };
}

function figures(scored: Scored[], ks: number[]): EvalFigures {
  const n = scored.length;
  const mean = (pick: (s: Scored) => number) => (n === 0 ? 0 : scored.reduce((a, s) => a + pick(s), 0) / n);
  const atK = (pick: (s: Scored) => number[]) =>
    Object.fromEntries(ks.map((k, i) => [k, mean((s) => pick(s)[i] ?? 0)]));
  return {
    questions: n,
    turnRecall: atK((s) => s.turnRecall),
    sessionRecall: atK((s) => s.sessionRecall),
    mrr: mean((s) => s.reciprocalRank),
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * Retrieval evaluation on LoCoMo-format data, no LLM: each conversation goes to its own tenant, each turn
 * is remembered as one memory (speaker, text, photo caption and session day; its session, dialog id,
 * speaker and date as attributes), each
 * question is recalled, and the ranked turns are scored against the question's evidence.
 */
export async function runLocomoEval(
  memory: MemoryService,
  conversations: EvalConversation[],
  options: EvalOptions,
): Promise<EvalReport> {
  const ks = [...new Set(options.ks)].sort((a, b) => a - b);
  const deepest = Math.max(...ks);
  const totalTurns = conversations.reduce(
    (n, c) => n + c.sessions.reduce((m, s) => m + s.turns.length, 0),
    0,
  );
  const totalQuestions = conversations.reduce((n, c) => n + c.questions.length, 0);
  const progress = options.onProgress ?? (() => {});
  const scopes = conversations.map((_, i): RequestScope => ({ tenantId: `eval-${i + 1}` }));

  let stored = 0;
  /** Per conversation: memory id → the dialog id of the turn stored as it. */
  const diaIds = conversations.map(() => new Map<string, string>());
  const rememberStart = performance.now();
  for (const [c, conversation] of conversations.entries()) {
    const scope = scopes[c] as RequestScope;
    for (const session of conversation.sessions) {
      const inputs = session.turns.map((turn) => ({
        content: turnContent(turn, session.date),
        type: 'event',
        session: `session_${session.index}`,
        metadata: {
          dia_id: turn.diaId,
          speaker: turn.speaker,
          ...(session.date ? { date: session.date } : {}),
        },
      }));
      for (let i = 0; i < inputs.length; i += MEMORY_LIMITS.batchMax) {
        const results = await memory.rememberMany(scope, inputs.slice(i, i + MEMORY_LIMITS.batchMax));
        results.forEach((r, j) => {
          // A turn repeating an earlier one word for word is stored once, as the earlier turn.
          const diaIdOf = diaIds[c] as Map<string, string>;
          if (!diaIdOf.has(r.id)) diaIdOf.set(r.id, session.turns[i + j]?.diaId ?? '');
        });
      }
      stored += inputs.length;
      progress({ phase: 'remember', done: stored, total: totalTurns });
    }
  }
  const rememberSeconds = (performance.now() - rememberStart) / 1000;
  await options.settle?.();

  const scored: Scored[] = [];
  const latencies: number[] = [];
  const modes: Record<string, number> = {};
  for (const [c, conversation] of conversations.entries()) {
    const scope = scopes[c] as RequestScope;
    const diaIdOf = diaIds[c] as Map<string, string>;
    for (const question of conversation.questions) {
      const start = performance.now();
      const result = await memory.recall(scope, { query: question.question, k: deepest });
      latencies.push(performance.now() - start);
      const mode = result.mode === 'hybrid' ? 'hybrid' : `text-only (${result.reason ?? 'unknown'})`;
      modes[mode] = (modes[mode] ?? 0) + 1;
      const ranked = result.hits.map((hit) => diaIdOf.get(hit.id) ?? '');
      scored.push({ category: question.category, ...scoreRanking(ranked, question.evidence, ks) });
      progress({ phase: 'recall', done: scored.length, total: totalQuestions });
    }
  }
  latencies.sort((a, b) => a - b);
  const byCategory: Record<string, EvalFigures> = {};
  for (const category of [...new Set(scored.map((s) => s.category))].sort((a, b) => a - b)) {
    byCategory[String(category)] = figures(
      scored.filter((s) => s.category === category),
      ks,
    );
  }
  return {
    conversations: conversations.length,
    turns: totalTurns,
    questions: scored.length,
    skipped: conversations.reduce((n, c) => n + c.skipped, 0),
    ks,
    overall: figures(
      scored.filter((s) => s.category !== ADVERSARIAL),
      ks,
    ),
    all: figures(scored, ks),
    byCategory,
    modes,
    latency: {
      rememberPerSecond: rememberSeconds > 0 ? totalTurns / rememberSeconds : 0,
      recallMs: {
        p50: percentile(latencies, 50),
        p95: percentile(latencies, 95),
        p99: percentile(latencies, 99),
      },
    },
  };
}
