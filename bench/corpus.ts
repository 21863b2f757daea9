/**
 * A deterministic synthetic corpus of assistant memories for benchmarks: people, places, activities and
 * objects drawn with a Zipf-like skew, in a dozen sentence shapes, plus queries that either reuse a
 * memory's keywords or paraphrase it (synonyms, other word forms, other order).
 */

/** mulberry32: a small seeded PRNG so every run generates the same corpus. */
export function createRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST =
  `Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Uma Victor Walter Xena Yusuf Zoe Aaron Bianca Caleb Daria Elif Farid Gwen Hugo Ines Jonas Kira Liam Maya Noor Omar Priya Quinn Rosa Sami Tara Ugo Vera Wen Xavi Yara Zeke`.split(
    ' ',
  );
const LAST =
  `Smith Jones Garcia Muller Rossi Tanaka Kim Nguyen Silva Novak Haddad Okafor Larsen Dubois Kowalski Ivanova Patel Cohen Moreau Schmidt`.split(
    ' ',
  );
const PLACES =
  `Lisbon Berlin Tokyo Nairobi Toronto Lima Oslo Seoul Austin Denver Porto Krakow Hanoi Cairo Dublin Madrid Quito Perth Zurich Boston Chicago Vienna Prague Athens Istanbul Mumbai Jakarta Manila Bogota Santiago`.split(
    ' ',
  );
const ACTIVITIES: [string, string][] = [
  ['hiking', 'trekking'],
  ['painting', 'drawing'],
  ['running', 'jogging'],
  ['cooking', 'baking'],
  ['swimming', 'diving'],
  ['cycling', 'biking'],
  ['reading', 'studying'],
  ['gardening', 'planting'],
  ['climbing', 'bouldering'],
  ['singing', 'performing'],
  ['fishing', 'sailing'],
  ['photography', 'filming'],
  ['knitting', 'sewing'],
  ['chess', 'puzzles'],
  ['yoga', 'meditation'],
  ['surfing', 'skating'],
  ['dancing', 'ballet'],
  ['writing', 'journaling'],
  ['pottery', 'sculpting'],
  ['camping', 'backpacking'],
];
const THINGS: [string, string][] = [
  ['car', 'vehicle'],
  ['dog', 'puppy'],
  ['cat', 'kitten'],
  ['laptop', 'computer'],
  ['guitar', 'instrument'],
  ['apartment', 'flat'],
  ['bicycle', 'bike'],
  ['camera', 'lens'],
  ['book', 'novel'],
  ['phone', 'mobile'],
  ['house', 'home'],
  ['job', 'position'],
  ['garden', 'yard'],
  ['piano', 'keyboard'],
  ['boat', 'kayak'],
  ['tent', 'shelter'],
  ['watch', 'clock'],
  ['jacket', 'coat'],
  ['painting', 'artwork'],
  ['recipe', 'dish'],
];
const FEELINGS: [string, string][] = [
  ['loves', 'adores'],
  ['enjoys', 'likes'],
  ['hates', 'dislikes'],
  ['prefers', 'favours'],
  ['misses', 'longs for'],
];
const WHEN =
  `yesterday|last week|last month|in March|in the summer|on Sunday|two years ago|during the holidays|after work|this morning`.split(
    '|',
  );
const DETAILS =
  `blue|red|old|new|expensive|cheap|vintage|electric|second-hand|handmade|tiny|huge|noisy|quiet|broken|shiny`.split(
    '|',
  );

function zipf<T>(rand: () => number, items: readonly T[]): T {
  // Squaring a uniform draw skews picks toward the front of the list, as real word use is skewed.
  return items[Math.floor(rand() ** 2 * items.length)] as T;
}

export interface CorpusMemory {
  content: string;
  /** The same fact said another way: synonyms, other forms, other order. */
  paraphrase: string;
  /** Two or three rare words of the memory. */
  keywords: string;
}

export function generateMemory(rand: () => number, i: number): CorpusMemory {
  const who = `${zipf(rand, FIRST)} ${zipf(rand, LAST)}`;
  const where = zipf(rand, PLACES);
  const [act, act2] = zipf(rand, ACTIVITIES);
  const [thing, thing2] = zipf(rand, THINGS);
  const [feel, feel2] = zipf(rand, FEELINGS);
  const when = zipf(rand, WHEN);
  const detail = zipf(rand, DETAILS);
  const n = i % 1000;
  const shapes: CorpusMemory[] = [
    {
      content: `${who} ${feel} ${act} in ${where} ${when}.`,
      paraphrase: `Which person ${feel2} ${act2} around ${where}?`,
      keywords: `${who.split(' ')[1]} ${act} ${where}`,
    },
    {
      content: `${who} bought a ${detail} ${thing} in ${where} ${when} for ${n} dollars.`,
      paraphrase: `purchase of a ${detail} ${thing2} by ${who.split(' ')[0]}`,
      keywords: `${who.split(' ')[0]} ${thing} ${detail}`,
    },
    {
      content: `${who} moved to ${where} ${when} because of a new ${thing}.`,
      paraphrase: `when did ${who.split(' ')[0]} relocate to ${where}`,
      keywords: `${who.split(' ')[1]} ${where} moved`,
    },
    {
      content: `Meeting with ${who} about the ${thing} project is set for ${when}; ticket ${n}.`,
      paraphrase: `appointment with ${who.split(' ')[0]} regarding ${thing2}`,
      keywords: `ticket ${n} ${thing}`,
    },
    {
      content: `${who} started ${act} ${when} and now practices it in ${where}.`,
      paraphrase: `${who.split(' ')[0]} took up ${act2} in ${where}`,
      keywords: `${who.split(' ')[1]} ${act}`,
    },
    {
      content: `The user prefers ${detail} ${thing}s and ${act} on weekends; note ${n}.`,
      paraphrase: `what kind of ${thing2} does the user like`,
      keywords: `${detail} ${thing} weekends`,
    },
  ];
  return shapes[i % shapes.length] as CorpusMemory;
}

/** `count` memories, and `queries` queries: half keyword queries, half paraphrases, each for a known memory. */
export function generateCorpus(count: number, queries: number, seed = 42) {
  const rand = createRandom(seed);
  const memories = Array.from({ length: count }, (_, i) => generateMemory(rand, i));
  const qrand = createRandom(seed + 1);
  const qs = Array.from({ length: queries }, (_, i) => {
    const target = Math.floor(qrand() * count);
    const m = memories[target] as CorpusMemory;
    return {
      target,
      kind: i % 2 === 0 ? 'keywords' : 'paraphrase',
      text: i % 2 === 0 ? m.keywords : m.paraphrase,
    };
  });
  return { memories, queries: qs };
}
