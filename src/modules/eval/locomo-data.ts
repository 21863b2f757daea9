import { z } from 'zod';
import { parseInput } from '../../core/validation.js';

/** One dialog turn of a LoCoMo conversation. */
export interface EvalTurn {
  /** `D<session>:<n>`, what questions name as evidence. */
  diaId: string;
  speaker: string;
  text: string;
  /** A shared photo's caption (LoCoMo's blip_caption), when the turn shares one. */
  caption: string | null;
}

export interface EvalSession {
  /** The N of `session_N`. */
  index: number;
  /** The session's date and time as LoCoMo writes it ("1:56 pm on 8 May, 2023"), or null. */
  date: string | null;
  turns: EvalTurn[];
}

export interface EvalQuestion {
  question: string;
  /** Evidence turns that exist in the conversation. */
  evidence: string[];
  category: number;
}

export interface EvalConversation {
  id: string;
  sessions: EvalSession[];
  questions: EvalQuestion[];
  /** Questions left out: no evidence turn of theirs exists in the conversation. */
  skipped: number;
}

const turnSchema = z.looseObject({
  speaker: z.string().min(1),
  dia_id: z.string().min(1),
  text: z.string(),
  blip_caption: z.string().optional().nullable(),
});

const qaSchema = z.looseObject({
  question: z.string().min(1),
  // A few LoCoMo questions give evidence as "D8:6; D9:17" in one string.
  evidence: z.array(z.string()).default([]),
  category: z.number().int(),
});

const conversationSchema = z.looseObject({
  sample_id: z.union([z.string(), z.number()]).optional(),
  conversation: z.record(z.string(), z.unknown()),
  qa: z.array(qaSchema),
});

export const locomoSchema = z
  .array(conversationSchema)
  .min(1, { error: 'expected at least one conversation' });

const SESSION_KEY = /^session_(\d+)$/;

/**
 * Reads LoCoMo-format data (an array of conversations with `conversation.session_N` turn lists,
 * `session_N_date_time` and `qa`), naming the path of anything malformed.
 */
export function parseLocomo(value: unknown): EvalConversation[] {
  const data = parseInput(locomoSchema, value);
  return data.map((raw, c): EvalConversation => {
    const sessions: EvalSession[] = [];
    for (const [key, turns] of Object.entries(raw.conversation)) {
      const match = SESSION_KEY.exec(key);
      if (!match) continue;
      const parsed = parseInput(z.array(turnSchema), turns);
      const date = raw.conversation[`${key}_date_time`];
      sessions.push({
        index: Number(match[1]),
        date: typeof date === 'string' ? date : null,
        turns: parsed.map((t) => ({
          diaId: t.dia_id.trim(),
          speaker: t.speaker,
          text: t.text,
          caption: t.blip_caption?.trim() ? t.blip_caption.trim() : null,
        })),
      });
    }
    sessions.sort((a, b) => a.index - b.index);
    const known = new Set(sessions.flatMap((s) => s.turns.map((t) => t.diaId)));
    const questions: EvalQuestion[] = [];
    let skipped = 0;
    for (const qa of raw.qa) {
      const evidence = [
        ...new Set(qa.evidence.flatMap((e) => e.split(/[;,\s]+/)).filter((e) => known.has(e))),
      ];
      if (evidence.length === 0) skipped++;
      else questions.push({ question: qa.question, evidence, category: qa.category });
    }
    return { id: String(raw.sample_id ?? `conversation-${c + 1}`), sessions, questions, skipped };
  });
}

/** The session number of a dialog id: `D3:12` → 3. */
export function sessionOfTurn(diaId: string): number {
  const match = /^D(\d+):/.exec(diaId);
  return match ? Number(match[1]) : -1;
}
