import { describe, expect, it } from 'vitest';
import {
  contentDigest,
  decideConsolidation,
  episodeScore,
  normaliseContent,
  tokens,
} from './consolidation-rules.js';

const rules = { importanceThreshold: 0.7 };
const facts = (
  content: string,
  over: Partial<{ role: string; importance: number | null; occurrences: number }> = {},
) => ({
  role: 'user',
  content,
  importance: null,
  occurrences: 1,
  ...over,
});

describe('consolidation rules', () => {
  it('keeps explicit importance at or above the threshold, and nothing just below it', () => {
    expect(decideConsolidation(facts('The build runs at noon', { importance: 0.7 }), rules)).toEqual({
      keep: true,
      reason: 'importance',
      type: 'fact',
    });
    expect(decideConsolidation(facts('The build runs at noon', { importance: 0.69 }), rules)).toEqual({
      keep: false,
    });
    // Importance counts for any role, even a tool's output.
    expect(decideConsolidation(facts('exit 0', { role: 'tool', importance: 1 }), rules)).toMatchObject({
      keep: true,
      reason: 'importance',
    });
  });

  it('keeps preferences the user states, as user_preferences', () => {
    for (const text of [
      'I prefer tabs over spaces',
      'i like my coffee black',
      'I love Rust',
      'I hate long meetings',
      "I don't like yellow",
      'I don’t like curly quotes either',
      'My favorite editor is Helix',
      'my favourite colour is teal',
      'Please always answer in French',
      'please never use emojis',
    ])
      expect(decideConsolidation(facts(text), rules), text).toEqual({
        keep: true,
        reason: 'preference',
        type: 'user_preferences',
      });
    // The assistant's own "I like" is no preference of the user's.
    expect(decideConsolidation(facts('I like that idea', { role: 'assistant' }), rules)).toEqual({
      keep: false,
    });
    // A word that merely contains the pattern does not match.
    expect(decideConsolidation(facts('Unlike before, it works'), rules)).toEqual({ keep: false });
  });

  it('keeps decisions of the user or the assistant, as decision', () => {
    for (const [role, text] of [
      ['user', 'We decided to ship on Friday'],
      ['assistant', 'I decided to split the module'],
      ['user', "Let's go with PostgreSQL"],
      ['assistant', "We'll use pnpm for the monorepo"],
      ['user', 'Decision: no more feature flags'],
      ['user', 'The team agreed to weekly releases'],
    ] as const)
      expect(decideConsolidation(facts(text, { role }), rules), text).toEqual({
        keep: true,
        reason: 'decision',
        type: 'decision',
      });
    expect(decideConsolidation(facts('We decided nothing', { role: 'tool' }), rules)).toEqual({
      keep: false,
    });
  });

  it('keeps content repeated in the session (user or assistant), not a repeated tool output', () => {
    expect(decideConsolidation(facts('The deploy key is in vault', { occurrences: 2 }), rules)).toEqual({
      keep: true,
      reason: 'repetition',
      type: 'fact',
    });
    expect(decideConsolidation(facts('The deploy key is in vault'), rules)).toEqual({ keep: false });
    expect(decideConsolidation(facts('OK', { role: 'tool', occurrences: 5 }), rules)).toEqual({
      keep: false,
    });
  });

  it('gives importance first, and keeps the type the content says', () => {
    expect(decideConsolidation(facts('I prefer dark mode', { importance: 0.9 }), rules)).toEqual({
      keep: true,
      reason: 'importance',
      type: 'user_preferences',
    });
  });

  it('normalises case, spacing, apostrophes and trailing punctuation; repeats share a digest', () => {
    expect(normaliseContent('  I Prefer   TABS.  ')).toBe('i prefer tabs');
    expect(normaliseContent('Don’t!')).toBe("don't");
    expect(contentDigest('I prefer tabs.')).toBe(contentDigest('i prefer  tabs'));
    expect(contentDigest('I prefer tabs')).not.toBe(contentDigest('I prefer spaces'));
    expect(contentDigest('x')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('scores the share of query tokens times exp(-ln2 × age / half-life)', () => {
    const q = tokens('Which database did we pick?');
    const hour = 3_600_000;
    const full = episodeScore(tokens('database pick'), 'we pick the database', 0, hour);
    expect(full).toBe(1);
    // we, pick, database: 3 of the query's 5 tokens.
    expect(episodeScore(q, 'we pick the database today', 0, hour)).toBeCloseTo(3 / 5);
    expect(episodeScore(q, 'we pick the database today', hour, hour)).toBeCloseTo(0.3);
    expect(episodeScore(q, 'we pick the database today', 2 * hour, hour)).toBeCloseTo(0.15);
    // From the future: as new, never above the match.
    expect(episodeScore(q, 'we pick the database today', -hour, hour)).toBeCloseTo(0.6);
    expect(episodeScore(q, 'nothing in common', 0, hour)).toBe(0);
    expect(episodeScore(new Set(), 'anything', 0, hour)).toBe(0);
  });
});
