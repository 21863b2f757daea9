import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { invalidInput, notFound } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import type { JobStore } from '../jobs/job-store.js';
import { outputObject, storageTierSchema } from './memory-output.js';
import type { MemoryStore } from './memory-store.js';
import {
  PIN_TAG,
  PROTECTED_TYPES,
  planRebalance,
  SCORE_WEIGHTS,
  scoreMemory,
  type TierSettings,
} from './memory-tiers.js';
import type { TierStore } from './tier-store.js';

/** What one rebalance (or decay) did, over every tenant it looked at. */
export const rebalanceReportSchema = outputObject({
  tenants: z.number(),
  memories: z.number(),
  rescored: z.number(),
  promoted: z.number(),
  demoted: z.number(),
  cooled: z.number(),
  /** Moves skipped because the memory changed meanwhile (another rebalance, a forget, a pin or protected type). */
  stale: z.number(),
  hot: z.number(),
  hot_max: z.number(),
  /** Tenants whose hot tier is still over BRAIN_HOT_MAX (their protected memories alone exceed it). */
  over_capacity: z.number(),
  seconds: z.number(),
});
export type RebalanceReport = z.infer<typeof rebalanceReportSchema>;

/** `brain memory explain ID`: the score now, its parts, the tier, and every move with its reason. */
export const explanationSchema = outputObject({
  id: z.string(),
  tier: storageTierSchema,
  score: z.number(),
  /** The score written by the last rebalance or decay (recall ranks by its own signals). */
  stored_score: z.number(),
  parts: outputObject({
    importance: z.number(),
    recency: z.number(),
    access: z.number(),
    pinned: z.boolean(),
    half_life_days: z.number(),
    last_used_at: z.string(),
  }),
  weights: outputObject({ importance: z.number(), recency: z.number(), access: z.number() }),
  protected: z.boolean(),
  moves: z.array(
    outputObject({
      from: storageTierSchema,
      to: storageTierSchema,
      reason: z.string(),
      score: z.number(),
      at: z.string(),
    }),
  ),
});
export type Explanation = z.infer<typeof explanationSchema>;

export interface TierService {
  /** Re-scores and (unless `moves` is false: the decay job) rebalances one tenant or every tenant. */
  rebalance(options?: { tenant?: string; moves?: boolean }): Promise<RebalanceReport>;
  /**
   * A rebalance asked for now (`brain rebalance`, `POST /admin/rebalance-memory`) by `by`. One of every
   * tenant is also recorded in the job history as a manual run of the `rebalance` job, succeeded or
   * failed, so that `/health`, `brain jobs` and the job metrics show it as the job's last run; one of a
   * single tenant is not a run of the job.
   */
  rebalanceNow(options: { tenant?: string }, by: string): Promise<RebalanceReport>;
  explain(scope: RequestScope, id: string): Promise<Explanation>;
  /** Live memories per tier and the hot tier's use of its capacity (hot / (BRAIN_HOT_MAX × tenants)). */
  /**
   * Live memories per tier; `ratio`: hot memories over the hot capacity of every tenant holding any
   * (BRAIN_HOT_MAX each); `fullest_ratio`: the fullest tenant's hot memories over BRAIN_HOT_MAX.
   */
  utilisation(): Promise<{ hot: number; warm: number; cold: number; ratio: number; fullest_ratio: number }>;
}

export interface TierServiceConfig {
  tiers: TierStore;
  memories: MemoryStore;
  settings: TierSettings;
  clock: Clock;
  logger: Logger;
  /** Where an on-demand rebalance of every tenant is recorded as a run of the `rebalance` job. */
  jobs?: JobStore;
  /** Called for each tenant whose memories changed tier (recall caches drop that tenant). */
  onMoved?: (tenantId: string) => void;
}

/** A tenant id's rule (BRAIN_DEFAULT_TENANT, API keys). */
const TENANT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Throws INVALID_INPUT naming `tenant` unless the id follows the tenant rule. */
export function checkTenantId(tenant: string): void {
  if (!TENANT_ID.test(tenant))
    throw invalidInput('tenant', 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -');
}

/** A rebalance's report in one line, for the job history. */
export function rebalanceMessage(r: RebalanceReport): string {
  return `${r.memories} memories of ${r.tenants} tenants: ${r.promoted} promoted, ${r.demoted} demoted, ${r.cooled} to cold, ${r.rescored} re-scored in ${r.seconds.toFixed(2)} s`;
}

export function createTierService(config: TierServiceConfig): TierService {
  const { tiers, memories, settings, clock, logger } = config;

  const service: TierService = {
    async rebalanceNow(options, by) {
      if (options.tenant !== undefined || !config.jobs) return service.rebalance(options);
      const jobs = config.jobs;
      const startedAt = clock.now();
      const record = (outcome: 'succeeded' | 'failed', message: string) => {
        const finishedAt = clock.now();
        return jobs.recordRun({
          job: 'rebalance',
          holder: by,
          trigger: 'manual',
          attempts: 1,
          startedAt: startedAt.toISOString(),
          finishedAt: finishedAt.toISOString(),
          durationMs: finishedAt.getTime() - startedAt.getTime(),
          outcome,
          message,
        });
      };
      let report: RebalanceReport;
      try {
        report = await service.rebalance();
      } catch (error) {
        await record('failed', error instanceof Error ? error.message : String(error)).catch(() => undefined);
        throw error;
      }
      await record('succeeded', rebalanceMessage(report));
      return report;
    },

    async rebalance(options = {}) {
      if (options.tenant !== undefined) checkTenantId(options.tenant);
      const started = performance.now();
      const now = clock.now();
      const iso = now.toISOString();
      const list = options.tenant !== undefined ? [options.tenant] : await tiers.tenants();
      const report: RebalanceReport = {
        tenants: 0,
        memories: 0,
        rescored: 0,
        promoted: 0,
        demoted: 0,
        cooled: 0,
        stale: 0,
        hot: 0,
        hot_max: settings.hotMax,
        over_capacity: 0,
        seconds: 0,
      };
      for (const tenantId of list) {
        const rows = await tiers.rows(tenantId, iso);
        if (rows.length === 0) continue;
        const plan = planRebalance(rows, now, settings, { moves: options.moves !== false });
        const applied = await tiers.apply(tenantId, plan.changes, iso);
        report.tenants++;
        report.memories += rows.length;
        report.rescored += applied.rescored;
        report.stale += applied.stale;
        for (const m of applied.moved) {
          if (m.to === 'hot') report.promoted++;
          else if (m.from === 'hot') report.demoted++;
          else report.cooled++;
        }
        report.hot += plan.hot;
        if (options.moves !== false && plan.hot > settings.hotMax) report.over_capacity++;
        if (applied.moved.length > 0) config.onMoved?.(tenantId);
      }
      report.seconds = (performance.now() - started) / 1000;
      logger.info({ ...report }, options.moves === false ? 'decay done' : 'rebalance done');
      return report;
    },

    async explain(scope, id) {
      const now = clock.now();
      const memory = await memories.get(scope, id, now.toISOString());
      if (!memory) throw notFound('memory', id);
      const parts = scoreMemory(memory, now, settings);
      return {
        id: memory.id,
        tier: memory.storage_tier,
        score: parts.score,
        stored_score: memory.memory_score,
        parts: {
          importance: parts.importance,
          recency: parts.recency,
          access: parts.access,
          pinned: parts.pinned,
          half_life_days: parts.half_life_days,
          last_used_at: parts.last_used_at,
        },
        weights: { ...SCORE_WEIGHTS },
        protected: PROTECTED_TYPES.includes(memory.type) || memory.tags.includes(PIN_TAG),
        moves: await tiers.moves(scope, id),
      };
    },

    async utilisation() {
      const c = await tiers.tierCounts(clock.now().toISOString());
      const capacity = settings.hotMax * c.tenants;
      return {
        hot: c.hot,
        warm: c.warm,
        cold: c.cold,
        ratio: capacity === 0 ? 0 : c.hot / capacity,
        fullest_ratio: c.fullest / settings.hotMax,
      };
    },
  };
  return service;
}
