import type { Command } from 'commander';
import type { Explanation, RebalanceReport } from '../../modules/memory/tier-service.js';
import type { SurfaceContext } from '../brain-services.js';
import { scopeFor } from './cli-scope.js';

export interface TierKit {
  withBrain(run: (ctx: SurfaceContext) => Promise<void>): Promise<void>;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
}

export function formatRebalance(r: RebalanceReport): string {
  const lines = [
    `${r.memories} memories of ${r.tenants} tenant${r.tenants === 1 ? '' : 's'} in ${r.seconds.toFixed(2)} s`,
    `  promoted to hot: ${r.promoted}   demoted from hot: ${r.demoted}   warm to cold: ${r.cooled}`,
    `  re-scored: ${r.rescored}   hot now: ${r.hot} (BRAIN_HOT_MAX ${r.hot_max} per tenant)`,
  ];
  if (r.stale > 0) lines.push(`  ${r.stale} moves skipped: the memory changed meanwhile`);
  if (r.over_capacity > 0)
    lines.push(
      `  ${r.over_capacity} tenant(s) still over BRAIN_HOT_MAX: their protected memories alone exceed it`,
    );
  return lines.join('\n');
}

export function formatExplanation(e: Explanation): string {
  const p = e.parts;
  const lines = [
    `${e.id}  tier ${e.tier}${e.protected ? ' (never demoted)' : ''}`,
    `score ${e.score.toFixed(3)} now (stored ${e.stored_score.toFixed(3)})${p.pinned ? ': pinned' : ''}`,
    `  importance ${p.importance.toFixed(3)} × ${e.weights.importance}`,
    `  recency    ${p.recency.toFixed(3)} × ${e.weights.recency}  (last used ${p.last_used_at}, half-life ${p.half_life_days} days)`,
    `  access     ${p.access.toFixed(3)} × ${e.weights.access}`,
  ];
  if (e.moves.length === 0) lines.push('moves: none');
  else {
    lines.push('moves:');
    for (const m of e.moves)
      lines.push(`  ${m.at}  ${m.from} → ${m.to}  score ${m.score.toFixed(3)}: ${m.reason}`);
  }
  return lines.join('\n');
}

/** `brain rebalance` and `brain memory explain ID`. */
export function registerTierCommands(program: Command, kit: TierKit): void {
  program
    .command('rebalance')
    .description('re-score every memory and move memories between the hot, warm and cold tiers now')
    .option('--tenant <id>', 'only this tenant (default: every tenant)')
    .option('--json', 'print JSON')
    .action(async (flags) =>
      kit.withBrain(async (ctx) => {
        const report = await ctx.services.tiers.rebalance(
          flags.tenant !== undefined ? { tenant: flags.tenant } : {},
        );
        kit.print(flags.json, report, () => formatRebalance(report));
      }),
    );

  program
    .command('memory')
    .description('inspect one memory')
    .command('explain')
    .description("show a memory's score, its parts, its tier and every move with its reason")
    .argument('<id>', 'memory id (mem_…)')
    .option('--tenant <id>', 'the tenant the memory belongs to (default: BRAIN_DEFAULT_TENANT)')
    .option('--json', 'print JSON')
    .action(async (id: string, flags) =>
      kit.withBrain(async (ctx) => {
        const explanation = await ctx.services.tiers.explain(scopeFor(ctx, flags.tenant), id);
        kit.print(flags.json, explanation, () => formatExplanation(explanation));
      }),
    );
}
