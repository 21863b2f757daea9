import { type BrainConfig, parseHalfLives } from '../config/config-schema.js';
import type { TierSettings } from '../modules/memory/memory-tiers.js';

/** The tier and decay settings of a config (validated at load, so parsing cannot fail here). */
export function tierSettings(config: BrainConfig): TierSettings {
  return {
    hotMax: config.hotMax,
    coldAfterDays: config.coldAfterDays,
    promoteAfterAccesses: config.promoteAfterAccesses,
    halfLifeDays: config.decayHalfLifeDays,
    halfLives: parseHalfLives(config.decayHalfLives),
  };
}
