import { describe, expect, it } from 'vitest';
import type { StorageTier } from '../../modules/memory/memory-types.js';
import { moveCode } from './pg-tier-store.js';

const TIERS: StorageTier[] = ['hot', 'warm', 'cold'];

describe('moveCode (a move as APPLY reads it)', () => {
  it('holds the tier it is from, its tier and its reason id apart, as the statement takes them out', () => {
    const ids = new Map([
      ['over capacity', 1],
      ['unused', 2 ** 27 - 1],
    ]);
    const seen = new Set<number>();
    for (const from of TIERS)
      for (const to of TIERS)
        for (const [reason, id] of ids) {
          const code = moveCode({ id: 'm', from, to, reason, score: 0.5 }, ids) as number;
          // APPLY: from ('{hot,warm,cold}')[(move & 3) + 1], to [((move >> 2) & 3) + 1], reason move >> 4.
          expect([TIERS[code & 3], TIERS[(code >> 2) & 3], Math.floor(code / 16)]).toEqual([from, to, id]);
          expect(code).toBeLessThan(2 ** 31);
          seen.add(code);
        }
    expect(seen.size).toBe(18);
    expect(moveCode(null, ids)).toBeNull();
  });

  it('refuses a reason without an id, or one too large for the int4', () => {
    const move = { id: 'm', from: 'hot' as const, to: 'warm' as const, reason: 'new', score: 0.5 };
    expect(() => moveCode(move, new Map())).toThrow(/reason "new" has no id/);
    expect(() => moveCode(move, new Map([['new', 2 ** 27]]))).toThrow(/below 2\^27/);
  });
});
