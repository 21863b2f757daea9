import crypto from 'node:crypto';

/** A character outside ASCII. NFKC changes no ASCII text, so text without one skips it. */
const NON_ASCII = /[\u0080-\uffff]/;

/** `text` in Unicode NFKC. Every write computes this more than once; most memories are ASCII. */
function nfkc(text: string): string {
  return NON_ASCII.test(text) ? text.normalize('NFKC') : text;
}

/** Whitespace that normalising changes: a run of more than one, or any but a plain space. */
const SPACING = /\s\s|[^\S ]/u;

/**
 * The content as dedupe compares it: Unicode NFKC, lower case, every run of whitespace one space, trimmed.
 * "Alice  likes tea." and "alice likes tea." are the same memory; punctuation and digits still count.
 */
export function normaliseContent(content: string): string {
  const lower = nfkc(content).toLowerCase();
  return (SPACING.test(lower) ? lower.replace(/\s+/gu, ' ') : lower).trim();
}

/**
 * SHA-256 in one call where Node has crypto.hash (20.12 and newer): about twice as fast as a Hash
 * object for a short text, and every write hashes its content three times.
 */
const sha256: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'base64url')
    : (text) => crypto.createHash('sha256').update(text).digest('base64url');

function hash(text: string): string {
  return sha256(text).slice(0, 22);
}

/**
 * The identity of a memory's content for dedupe: 128 bits of SHA-256 of the normalised text (22 base64url
 * characters, see {@link normaliseContent}) identify content as surely as 256 bits, and keep the dedupe
 * index a third the size of hex. Pure, so that every driver and `brain store copy` compute the same value.
 */
export function contentHash(content: string): string {
  return hash(normaliseContent(content));
}

/**
 * The hash rows written before normalisation store (of the trimmed text only). Drivers look a write up by
 * both, so that a repeat of an older memory is still found without rewriting every stored hash; an older
 * memory that differs only by case or spacing is not (near-duplicate detection may still merge it).
 */
export function legacyContentHash(content: string): string {
  return hash(content.trim());
}

/** Punctuation at the edges of a word: sentence marks, quotes and brackets (not `?`, `-`, `#`, `@`, `%`, `$`). */
const EDGE = /^[\p{Ps}\p{Pe}\p{Pi}\p{Pf}.,;:!"'…]+|[\p{Ps}\p{Pe}\p{Pi}\p{Pf}.,;:!"'…]+$/gu;

/** Whether character code `c` is an ASCII letter or digit, which {@link EDGE} never strips. */
function inWord(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/**
 * The index at which the lexicographically least rotation of `words` starts (Booth's algorithm over
 * words: linear, so a long text costs no more than its length).
 */
function leastRotation(words: readonly string[]): number {
  const n = words.length;
  const at = (i: number) => words[i % n] as string;
  const fail = new Array<number>(2 * n).fill(-1);
  let k = 0;
  for (let j = 1; j < 2 * n; j++) {
    let i = fail[j - k - 1] as number;
    while (i !== -1 && at(j) !== at(k + i + 1)) {
      if (at(j) < at(k + i + 1)) k = j - i - 1;
      i = fail[i] as number;
    }
    if (at(j) !== at(k + i + 1)) {
      // i === -1 here
      if (at(j) < at(k)) k = j;
      fail[j - k] = -1;
    } else fail[j - k] = i + 1;
  }
  return k;
}

/** Contractions whose whole word is not the stem plus the expansion of its ending. */
const IRREGULAR: Readonly<Record<string, readonly string[]>> = {
  "won't": ['will', 'not'],
  "can't": ['can', 'not'],
  "shan't": ['shall', 'not'],
  cannot: ['can', 'not'],
};

/** Endings that stand for one word each; `'s` (is, has or whose) and `'d` (had or would) do not. */
const ENDINGS: readonly [string, string][] = [
  ["n't", 'not'],
  ["'re", 'are'],
  ["'ve", 'have'],
  ["'ll", 'will'],
  ["'m", 'am'],
];

/** A word with its contraction spelled out ("doesn't" → does not, "we're" → we are), else itself. */
function expanded(word: string): readonly string[] {
  const irregular = IRREGULAR[word];
  if (irregular) return irregular;
  for (const [ending, full] of ENDINGS)
    if (word.length > ending.length && word.endsWith(ending)) return [word.slice(0, -ending.length), full];
  return [word];
}

/**
 * The content as a rewording of it reads: the normalised words (see {@link normaliseContent}) without
 * articles and edge punctuation, typographic apostrophes as `'`, contractions spelled out ("doesn't",
 * "does not"; not `'s` nor `'d`, which stand for more than one word), started at the least rotation of
 * their order. "The deploy runs every night at 2am." and "Every night at 2am the deploy runs" are one fact
 * told from another end; "prefers email to phone calls" and "prefers phone calls to email" are not
 * (no rotation maps one onto the other), nor are texts that differ by any word, number or negation;
 * a text of one or two words keeps its order.
 * Empty when the content has no word left (it is then nobody's rewording).
 */
export function rewordedForm(content: string): string {
  const words: string[] = [];
  const text = (
    NON_ASCII.test(content) ? content.normalize('NFKC').replace(/[\u2018\u2019\u02bc]/gu, "'") : content
  ).trim();
  const raws = text.split(/\s+/u);
  for (let i = 0; i < raws.length; i++) {
    const raw = raws[i] as string;
    const kept =
      inWord(raw.charCodeAt(0)) && inWord(raw.charCodeAt(raw.length - 1)) ? raw : raw.replace(EDGE, '');
    const word = kept.toLowerCase();
    // "A" after the first word may be a name (plan A, vitamin A): only a lower-case one is an article there.
    if (word === '' || word === 'the' || word === 'an' || kept === 'a' || (kept === 'A' && i === 0)) continue;
    if (word.includes("'") || word === 'cannot') words.push(...expanded(word));
    else words.push(word);
  }
  if (words.length === 0) return '';
  // Two words turned round are any order of them ("Bob Alice"): a rotation counts from three words.
  if (words.length < 3) return words.join(' ');
  const k = leastRotation(words);
  return k === 0 ? words.join(' ') : [...words.slice(k), ...words.slice(0, k)].join(' ');
}

/** The identity of a memory's content up to rewording ({@link rewordedForm}), or '' when it has no word. */
export function rewordedHash(content: string): string {
  const form = rewordedForm(content);
  return form === '' ? '' : hash(form);
}
