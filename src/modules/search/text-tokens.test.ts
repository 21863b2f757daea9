import { stemmer } from 'stemmer';
import { describe, expect, it } from 'vitest';
import { searchTokens } from './text-tokens.js';

describe('search tokens', () => {
  it('are the Porter stems of the words without stopwords, in order, the same each time', () => {
    const text = 'The runners were running to the Running Club, and Caroline RUNS daily';
    const expected = ['runner', 'run', 'run', 'club', 'carolin', 'run', 'daili'];
    expect(searchTokens(text)).toEqual(expected);
    expect(searchTokens(text)).toEqual(expected);
  });

  it('stem every word as the stemmer does past the bound of remembered stems', () => {
    const words = Array.from({ length: 60_000 }, (_, i) => `walking${i.toString(36)}ness`);
    for (const word of words) expect(searchTokens(word)).toEqual([stemmer(word)]);
    expect(searchTokens('connections connected')).toEqual(['connect', 'connect']);
  });
});
