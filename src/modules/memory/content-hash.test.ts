import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEDUPE_PAIRS } from '../eval/dedupe-pairs.js';
import {
  contentHash,
  legacyContentHash,
  normaliseContent,
  rewordedForm,
  rewordedHash,
} from './content-hash.js';

/** The least rotation the slow way: every rotation compared (one or two words: as they are). */
function leastRotationByHand(words: string[]): string {
  if (words.length < 3) return words.join(' ');
  let best: string | null = null;
  for (let k = 0; k < words.length; k++) {
    const rotation = [...words.slice(k), ...words.slice(0, k)];
    // Compared word by word, as the store's form orders them.
    if (best === null || compareWords(rotation, best.split(' ')) < 0) best = rotation.join(' ');
  }
  return best ?? '';
}

function compareWords(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return (a[i] as string) < (b[i] as string) ? -1 : 1;
  }
  return a.length - b.length;
}

describe('the reworded form of a memory', () => {
  it('folds articles, case, spacing, edge punctuation and the end the words start from', () => {
    const form = rewordedForm('The deploy runs every night at 2am.');
    expect(form).toBe('2am deploy runs every night at');
    for (const other of [
      'Every night at 2am, the deploy runs',
      '“At 2am the deploy runs every night.”',
      '  deploy   RUNS every night at 2am!',
      'A deploy runs every night at 2am',
    ])
      expect(rewordedForm(other)).toBe(form);
    // Typographic and plain apostrophes are one.
    expect(rewordedForm('Grandma’s birthday is in March')).toBe(
      rewordedForm("grandma's birthday is in March"),
    );
    // A contraction is the words it stands for; 's and 'd stand for more than one, so they stay.
    expect(rewordedForm("The user doesn't eat meat.")).toBe(rewordedForm('The user does not eat meat'));
    expect(rewordedForm('We won’t ship on Fridays')).toBe(rewordedForm('we will not ship on Fridays'));
    expect(rewordedForm("I can't swim and I'm cold")).toBe(rewordedForm('I cannot swim and I am cold'));
    expect(rewordedForm("They're moving and we've packed")).toBe(
      rewordedForm('They are moving and we have packed'),
    );
    expect(rewordedForm("She's left")).not.toBe(rewordedForm('She is left'));
    expect(rewordedForm("He'd gone")).not.toBe(rewordedForm('He had gone'));
  });

  it('keeps what changes a fact: any word, number, negation, sign or an order no rotation gives', () => {
    const form = rewordedForm('The user prefers email to phone calls.');
    for (const other of [
      'The user prefers phone calls to email.',
      'The user prefers email to phone calls?',
      'The user does not prefer email to phone calls.',
      'The user prefers email to video calls.',
    ])
      expect(rewordedForm(other)).not.toBe(form);
    expect(rewordedForm('It is -5 degrees outside')).not.toBe(rewordedForm('It is 5 degrees outside'));
    expect(rewordedForm('version 1.2 is live')).not.toBe(rewordedForm('version 12 is live'));
    // Two words turned round are not told from another end.
    expect(rewordedForm('Bob, Alice')).not.toBe(rewordedForm('Alice, Bob'));
    expect(rewordedForm('Alice, Bob.')).toBe(rewordedForm('alice bob'));
    // "A" past the first word may be a name: plan A is not a plan.
    expect(rewordedForm('We chose plan A')).not.toBe(rewordedForm('We chose plan'));
    expect(rewordedForm('We chose a plan')).toBe(rewordedForm('We chose plan'));
  });

  it('starts at the least rotation of the words, as every rotation compared would', () => {
    const cases = [
      'b a b a a b',
      'x x x',
      'c b a c b a c',
      'one two one two one',
      'z y x w v u t s r q p o n m l k j i h g f e d c b a z',
    ];
    let seed = 7;
    for (let n = 0; n < 200; n++) {
      const words: string[] = [];
      for (let i = 0; i < 1 + (n % 12); i++) {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        words.push(['ab', 'a', 'b', 'ba', 'c'][seed % 5] as string);
      }
      cases.push(words.join(' '));
    }
    // 'a' alone is an article: every case starts with a word that is not one.
    for (const text of cases)
      expect(rewordedForm(`go ${text}`)).toBe(
        leastRotationByHand(`go ${text}`.split(' ').filter((w) => w !== 'a')),
      );
  });

  it('is no identity for a text without words, and differs from the exact hash', () => {
    expect(rewordedHash('')).toBe('');
    expect(rewordedHash(' ... ')).toBe('');
    expect(rewordedHash('The cat is called Miso')).toHaveLength(22);
    expect(rewordedHash('The cat is called Miso')).not.toBe(contentHash('The cat is called Miso'));
  });

  it('merges no pair of the labelled look-alikes', () => {
    const merged = DEDUPE_PAIRS.filter((p) => !p.same && rewordedForm(p.a) === rewordedForm(p.b));
    expect(merged).toEqual([]);
  });
});

describe('the exact content hash', () => {
  // The definition, computed the long way: what every stored row and every driver agree on.
  const normalisedByHand = (text: string) =>
    text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();
  const sha = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 22);

  it('normalises ASCII and other text as NFKC, lower case and single spaces do', () => {
    const texts = [
      'Alice likes tea.',
      '  Alice  likes\ttea.\n',
      'Alice\u00a0likes tea',
      'ＡＬＩＣＥ likes ﬁne tea',
      'Cafe\u0301 au lait',
      'line\u2028separated',
      'x\r\ny',
      '',
      '   ',
    ];
    for (const text of texts) {
      expect(normaliseContent(text)).toBe(normalisedByHand(text));
      expect(contentHash(text)).toBe(sha(normalisedByHand(text)));
      expect(legacyContentHash(text)).toBe(sha(text.trim()));
    }
  });
});
