import type { RequestScope } from '../../core/scope.js';
import type { TierMove, TierRow } from '../../modules/memory/memory-tiers.js';
import type { StorageTier } from '../../modules/memory/memory-types.js';
import type { AppliedPlan, RecordedMove, TierStore } from '../../modules/memory/tier-store.js';
import type { PgDatabase } from './pg-database.js';

const LIVE = 'deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $2)';

/**
 * Tiers and decay on PostgreSQL. A plan is applied in one transaction of three statements over unnest()
 * arrays: lock the memories still in their planned `from` tier, write every changed row once (score and
 * tier), record the moves made; so two replicas rebalancing at once never move a memory twice.
 */
export class PgTierStore implements TierStore {
  readonly #db: PgDatabase;
  /** Writes the access counts recall batched, and says a tenant's memories changed tier (caches). */
  readonly #hooks: { flushTouches: () => Promise<void>; changed: (tenantId: string) => Promise<void> };

  constructor(
    db: PgDatabase,
    hooks: { flushTouches: () => Promise<void>; changed: (tenantId: string) => Promise<void> },
  ) {
    this.#db = db;
    this.#hooks = hooks;
  }

  async tenants(): Promise<string[]> {
    const { rows } = await this.#db.query<{ tenant_id: string }>(
      'SELECT DISTINCT tenant_id FROM memories WHERE deleted_at IS NULL ORDER BY tenant_id',
      [],
      this.#db.primary,
    );
    return rows.map((r) => r.tenant_id);
  }

  async rows(tenantId: string, now: string): Promise<TierRow[]> {
    await this.#hooks.flushTouches();
    const { rows } = await this.#db.query<TierRow>(
      `SELECT id, type, tags, importance, access_count, created_at, accessed_at, storage_tier, memory_score,
              tier_access_count
       FROM memories WHERE tenant_id = $1 AND ${LIVE}`,
      [tenantId, now],
      this.#db.primary,
    );
    return rows;
  }

  async apply(
    tenantId: string,
    plan: { scores: { id: string; score: number }[]; moves: TierMove[] },
    now: string,
  ): Promise<AppliedPlan> {
    const result = await this.#db.transaction(async (client) => {
      // 1. Lock the memories still in their planned `from` tier (in id order, so two rebalances queue
      //    rather than deadlock); a concurrent rebalance that moved one first makes its move stale here.
      let moved: TierMove[] = [];
      if (plan.moves.length > 0) {
        const { rows } = await client.query<{ id: string }>(
          `SELECT m.id FROM memories m JOIN unnest($2::text[], $3::text[]) AS p(id, from_tier)
             ON m.id = p.id AND m.storage_tier = p.from_tier
           WHERE m.tenant_id = $1 AND m.deleted_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > $4)
           ORDER BY m.id FOR UPDATE OF m`,
          [tenantId, plan.moves.map((m) => m.id), plan.moves.map((m) => m.from), now],
        );
        const still = new Set(rows.map((r) => r.id));
        moved = plan.moves.filter((m) => still.has(m.id));
      }
      // 2. One UPDATE for every row the plan changes: its new score and/or its new tier. Each row is
      //    written once (PostgreSQL rewrites the whole row, its generated tsvector included).
      const changes = new Map<string, { score: number | null; tier: string | null }>();
      for (const sc of plan.scores) changes.set(sc.id, { score: sc.score, tier: null });
      for (const m of moved) changes.set(m.id, { score: changes.get(m.id)?.score ?? null, tier: m.to });
      let rescored = 0;
      if (changes.size > 0) {
        const ids = [...changes.keys()].sort();
        const r = await client.query<{ rescored: boolean }>(
          `UPDATE memories m SET
             memory_score = coalesce(u.score, m.memory_score),
             storage_tier = coalesce(u.tier, m.storage_tier),
             tier_access_count = CASE WHEN u.tier IS NULL THEN m.tier_access_count ELSE m.access_count END
           FROM unnest($2::text[], $3::float8[], $4::text[]) AS u(id, score, tier)
           WHERE m.id = u.id AND m.tenant_id = $1
           RETURNING u.score IS NOT NULL AS rescored`,
          [
            tenantId,
            ids,
            ids.map((id) => changes.get(id)?.score ?? null),
            ids.map((id) => changes.get(id)?.tier ?? null),
          ],
        );
        rescored = r.rows.filter((row) => row.rescored).length;
      }
      // 3. The moves made, recorded.
      if (moved.length > 0)
        await client.query(
          `INSERT INTO tier_moves (tenant_id, memory_id, from_tier, to_tier, reason, score, at)
           SELECT $1, p.id, p.from_tier, p.to_tier, p.reason, p.score, $2
           FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::float8[])
             AS p(id, from_tier, to_tier, reason, score)`,
          [
            tenantId,
            now,
            moved.map((x) => x.id),
            moved.map((x) => x.from),
            moved.map((x) => x.to),
            moved.map((x) => x.reason),
            moved.map((x) => x.score),
          ],
        );
      return { moved, stale: plan.moves.length - moved.length, rescored };
    });
    if (result.moved.length > 0) await this.#hooks.changed(tenantId);
    return result;
  }

  async moves(scope: RequestScope, id: string): Promise<RecordedMove[]> {
    const { rows } = await this.#db.query<RecordedMove>(
      `SELECT from_tier AS "from", to_tier AS "to", reason, score, at FROM tier_moves
       WHERE tenant_id = $1 AND memory_id = $2 ORDER BY id`,
      [scope.tenantId, id],
    );
    return rows;
  }

  async tierCounts(now: string): Promise<{ hot: number; warm: number; cold: number; tenants: number }> {
    const { rows } = await this.#db.query<{ tier: StorageTier; n: string; tenants: string }>(
      `SELECT storage_tier AS tier, count(*) AS n, 0 AS tenants FROM memories
       WHERE deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $1) GROUP BY storage_tier
       UNION ALL
       SELECT 'tenants', 0, count(DISTINCT tenant_id) FROM memories
       WHERE deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $1)`,
      [now],
    );
    const counts = { hot: 0, warm: 0, cold: 0, tenants: 0 };
    for (const r of rows) {
      if (r.tier === ('tenants' as StorageTier)) counts.tenants = Number(r.tenants);
      else counts[r.tier] = Number(r.n);
    }
    return counts;
  }
}
