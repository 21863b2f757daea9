import type { RequestScope } from '../../core/scope.js';
import {
  movesOf,
  PIN_TAG,
  type PlanChange,
  PROTECTED_TYPES,
  type TierMove,
  type TierRow,
} from '../../modules/memory/memory-tiers.js';
import type { StorageTier } from '../../modules/memory/memory-types.js';
import type { AppliedPlan, RecordedMove, TierCounts, TierStore } from '../../modules/memory/tier-store.js';
import { LIVE_TENANTS, type TierColumns, tierRowFrom } from '../tier-rows.js';
import type { PgDatabase } from './pg-database.js';
import { float8ArrayBinary, int4ArrayBinary, int8ArrayBinary, PG_MEMORY_FROM } from './pg-memory-rows.js';

const LIVE = 'm.deleted_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > $2)';

/**
 * A tenant's tier lock (transaction-scoped; $1 the tenant): rebalances of one tenant apply one after the
 * other, and a hard forget waits for the one applying (which could otherwise record a move of the
 * memory after the forget took its moves away). Locking each moved memory's row instead cost 0.3 s of
 * a 98,000-move plan.
 */
export const TIER_LOCK = "SELECT pg_advisory_xact_lock(hashtext('brain_tiers'), hashtext($1))";

/**
 * A plan applied in one statement, under the tier lock. Its rows: $2 the memory's rid (a bigserial,
 * never reused: it names the memory without its id), $3 its new score (or null), $4 its move as one
 * number (`moveCode`; null: none) and $5 the move's score; $6 now. The move's tiers and reason in one
 * number rather than an array each: each array of an unnest is a scan of its own (six arrays cost
 * ~0.14 s of a 100,000-row plan, and the two of tier names most of building them). A move is made if
 * the memory is live and still in its `from` tier, and a demotion (from hot, or to cold) only if the
 * memory is not now of a protected type ($8) nor tagged $9 (pinned): the statement's snapshot, so a
 * memory pinned after the plan read it is not demoted. A memory's tier row (none yet: hot, default score,
 * never moved) gets what the plan changes and keeps the rest: inserted when it has none, updated when it
 * has one. Plain statements, not an upsert: only the tier store writes a tenant's tier rows, under the
 * tier lock this statement runs after, so the rows it sees are the rows there are (an upsert's
 * speculative insertion cost ~40% more: ~0.3 s of a first rebalance's 95,000 new rows).
 *
 * A move made is recorded in the tier row (moved_*: its last move; the tier it went to is the row's
 * tier), and the move it replaces, if any, is copied into tier_moves (from p: the row as it was before
 * the statement). Returns how many scores were written and the moves found stale (none when all $7
 * moves were made).
 */
const APPLY = `WITH p AS MATERIALIZED (
  SELECT m.id, u.score, u.tier, u.from_tier, u.reason, u.move_score, m.rid, mt.rid IS NOT NULL AS has_row,
    m.access_count, mt.storage_tier AS cur_tier, mt.memory_score AS cur_score, mt.tier_access_count AS cur_tac,
    mt.moved_from AS last_from, mt.moved_reason AS last_reason, mt.moved_score AS last_score,
    mt.moved_at AS last_at,
    u.tier IS NOT NULL AND coalesce(mt.storage_tier, 'hot') = u.from_tier AND m.deleted_at IS NULL
      AND (m.expires_at IS NULL OR m.expires_at > $6)
      AND NOT ((u.from_tier = 'hot' OR u.tier = 'cold') AND (m.type = ANY($8::text[]) OR $9 = ANY(m.tags)))
      AS moves
  FROM (
    SELECT u.rid, u.score, ('{hot,warm,cold}'::text[])[((u.move >> 2) & 3) + 1] AS tier,
      ('{hot,warm,cold}'::text[])[(u.move & 3) + 1] AS from_tier, u.move >> 4 AS reason, u.move_score
    FROM unnest($2::int8[], $3::float8[], $4::int4[], $5::float8[]) AS u(rid, score, move, move_score)
  ) u
  JOIN memories m ON m.rid = u.rid AND m.tenant_id = $1
  LEFT JOIN memory_tiers mt ON mt.rid = m.rid
),
history AS (
  INSERT INTO tier_moves (tenant_id, memory_id, from_tier, to_tier, reason, score, at)
  SELECT $1, p.id, p.last_from, p.cur_tier, r.reason, p.last_score, p.last_at
  FROM p JOIN tier_reasons r ON r.id = p.last_reason WHERE p.moves AND p.last_at IS NOT NULL
),
added AS (
  INSERT INTO memory_tiers (rid, storage_tier, memory_score, tier_access_count, moved_from, moved_reason,
    moved_score, moved_at)
  SELECT rid, CASE WHEN moves THEN tier ELSE 'hot' END, coalesce(score, 0.5),
    CASE WHEN moves THEN access_count ELSE 0 END, CASE WHEN moves THEN from_tier END,
    CASE WHEN moves THEN reason END, CASE WHEN moves THEN move_score END,
    CASE WHEN moves THEN $6 END
  FROM p WHERE NOT has_row AND (score IS NOT NULL OR moves)
),
changed AS (
  UPDATE memory_tiers t SET storage_tier = CASE WHEN p.moves THEN p.tier ELSE p.cur_tier END,
    memory_score = coalesce(p.score, p.cur_score),
    tier_access_count = CASE WHEN p.moves THEN p.access_count ELSE p.cur_tac END,
    moved_from = CASE WHEN p.moves THEN p.from_tier ELSE p.last_from END,
    moved_reason = CASE WHEN p.moves THEN p.reason ELSE p.last_reason END,
    moved_score = CASE WHEN p.moves THEN p.move_score ELSE p.last_score END,
    moved_at = CASE WHEN p.moves THEN $6 ELSE p.last_at END
  FROM p WHERE t.rid = p.rid AND p.has_row AND (p.score IS NOT NULL OR p.moves)
)
SELECT (SELECT count(*) FROM p WHERE score IS NOT NULL) AS rescored,
  CASE WHEN (SELECT count(*) FROM p WHERE moves) = $7 THEN '{}'::int8[] ELSE
    array(SELECT u.rid FROM unnest($2::int8[], $4::int4[]) AS u(rid, move) WHERE u.move IS NOT NULL
          EXCEPT SELECT rid FROM p WHERE moves) END AS stale`;

const TIER_CODE: Readonly<Record<StorageTier, number>> = { hot: 0, warm: 1, cold: 2 };

/**
 * A move as one int4 (APPLY's $4), null for none: bits 0-1 the tier it is from and 2-3 its tier (0 hot,
 * 1 warm, 2 cold), the rest its reason's tier_reasons id.
 */
export function moveCode(move: TierMove | null, reasonIds: ReadonlyMap<string, number>): number | null {
  if (!move) return null;
  const reason = reasonIds.get(move.reason);
  if (reason === undefined || reason >= 2 ** 27)
    throw new RangeError(`moveCode: reason ${JSON.stringify(move.reason)} has no id below 2^27`);
  return reason * 16 + TIER_CODE[move.to] * 4 + TIER_CODE[move.from];
}

/**
 * Tiers and decay on PostgreSQL, in memory_tiers (a memory without a row there is hot with the default
 * score), with each memory's last move; its earlier moves are in tier_moves. A plan is applied in one
 * transaction of two statements: take the tenant's tier lock, then (APPLY) keep the moves still from
 * their planned tier, write every changed tier row once and record the moves made; so two replicas
 * rebalancing at once never move a memory twice.
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
    const { rows } = await this.#db.query<{ tenant_id: string }>(LIVE_TENANTS, [], this.#db.primary);
    return rows.map((r) => r.tenant_id);
  }

  async rows(tenantId: string, now: string): Promise<TierRow[]> {
    await this.#hooks.flushTouches();
    // The rid as a float8 (exact to 2^53) so that it arrives as a number; whether it is pinned rather
    // than its tags (parsing 100,000 lists cost ~0.1 s, and the rest of them play no part).
    const rows = await this.#db.queryArrays<TierColumns>(
      `SELECT m.rid::float8, m.id, m.type, $3 = ANY(m.tags), m.importance, m.access_count,
              coalesce(m.accessed_at, m.created_at), coalesce(mt.storage_tier, 'hot'),
              coalesce(mt.memory_score, 0.5), coalesce(mt.tier_access_count, 0)
       FROM ${PG_MEMORY_FROM} WHERE m.tenant_id = $1 AND ${LIVE}`,
      [tenantId, now, PIN_TAG],
      this.#db.primary,
    );
    return rows.map(tierRowFrom);
  }

  async apply(tenantId: string, changes: readonly PlanChange[], now: string): Promise<AppliedPlan> {
    if (changes.length === 0) return { moved: [], stale: 0, rescored: 0 };
    const planned = movesOf(changes);
    const reasonIds = await this.#reasonIds(planned);
    // The plan as binary arrays, built once: not while the tier lock is held, nor again on a retry.
    const args = [
      tenantId,
      int8ArrayBinary(changes.map((c) => c.ref)),
      float8ArrayBinary(changes.map((c) => c.score)),
      int4ArrayBinary(changes.map((c) => moveCode(c.move, reasonIds))),
      float8ArrayBinary(changes.map((c) => c.move?.score ?? null)),
      now,
      planned.length,
      PROTECTED_TYPES,
      PIN_TAG,
    ];
    const result = await this.#db.transaction(async (client) => {
      // 1. The tenant's tier lock: a concurrent rebalance (or hard forget) of the tenant waits for this
      //    one to commit. APPLY runs after, as a statement of its own: its snapshot is taken once the
      //    lock is held, so it sees what the one before wrote, and that one's moves make these stale.
      await client.query(TIER_LOCK, [tenantId]);
      // A large plan's joins and sorts in memory rather than in temporary files (the default 4 MB spilled
      // a 98,000-move plan's, ~0.1 s of it); for this transaction only.
      await client.query("SET LOCAL work_mem = '64MB'");
      // 2. Everything else in one statement, the plan sent once.
      const { rows } = await client.query<{ rescored: string; stale: string[] }>(APPLY, args);
      // The stale ones' rids (int8, so strings); usually none.
      const stale = new Set((rows[0]?.stale ?? []).map(Number));
      const moved = stale.size === 0 ? planned : movesOf(changes, (c) => !stale.has(c.ref));
      return { moved, stale: stale.size, rescored: Number(rows[0]?.rescored ?? 0) };
    });
    if (result.moved.length > 0) await this.#hooks.changed(tenantId);
    return result;
  }

  /**
   * The tier_reasons id of each distinct reason of `moves` (every demotion of a plan shares one), added
   * when new. Outside the plan's transaction: a reason is only a string, kept whether or not the plan
   * commits. Usually every reason is there already: one read. Only the missing ones are inserted (an
   * insert that meets a conflict still takes a number from the sequence, so inserting every reason of
   * every plan would use up the int4 ids, and `moveCode`'s 2^27, in a long-lived store of many tenants),
   * then read again in a statement of their own: after the insert waited for another replica's insert of
   * the same reason to commit, a new snapshot sees that row (the insert's own would not).
   */
  async #reasonIds(moves: readonly { reason: string }[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    const read = async (reasons: string[]) => {
      const { rows } = await this.#db.query<{ id: number; reason: string }>(
        'SELECT id, reason FROM tier_reasons WHERE reason = ANY($1::text[])',
        [reasons],
        this.#db.primary,
      );
      for (const r of rows) ids.set(r.reason, r.id);
    };
    const distinct = [...new Set(moves.map((m) => m.reason))];
    if (distinct.length === 0) return ids;
    await read(distinct);
    const missing = distinct.filter((r) => !ids.has(r));
    if (missing.length === 0) return ids;
    await this.#db.query(
      'INSERT INTO tier_reasons (reason) SELECT unnest($1::text[]) ON CONFLICT (reason) DO NOTHING',
      [missing],
      this.#db.primary,
    );
    await read(missing);
    return ids;
  }

  async moves(scope: RequestScope, id: string): Promise<RecordedMove[]> {
    // The earlier moves in the order made, then the last one, from the memory's tier row.
    const { rows } = await this.#db.query<RecordedMove>(
      `SELECT "from", "to", reason, score, at FROM (
         SELECT 0 AS last, id, from_tier AS "from", to_tier AS "to", reason, score, at FROM tier_moves
         WHERE tenant_id = $1 AND memory_id = $2
         UNION ALL
         SELECT 1, 0, mt.moved_from, mt.storage_tier, r.reason, mt.moved_score, mt.moved_at
         FROM memories m JOIN memory_tiers mt ON mt.rid = m.rid JOIN tier_reasons r ON r.id = mt.moved_reason
         WHERE m.tenant_id = $1 AND m.id = $2 AND mt.moved_at IS NOT NULL
       ) moves ORDER BY last, id`,
      [scope.tenantId, id],
    );
    return rows;
  }

  async tierCounts(now: string): Promise<TierCounts> {
    // Per tenant and tier first, then summed: the tiers' totals, the tenants and the fullest hot tier
    // from one pass over the live rows.
    const { rows } = await this.#db.query<{ tier: StorageTier; n: string; tenants: string; most: string }>(
      `SELECT tier, sum(n) AS n, 0 AS tenants, max(n) AS most FROM (
         SELECT m.tenant_id, coalesce(mt.storage_tier, 'hot') AS tier, count(*) AS n FROM ${PG_MEMORY_FROM}
         WHERE m.deleted_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > $1) GROUP BY 1, 2
       ) per_tenant GROUP BY tier
       UNION ALL
       SELECT 'tenants', 0, count(DISTINCT tenant_id), 0 FROM memories
       WHERE deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $1)`,
      [now],
    );
    const counts = { hot: 0, warm: 0, cold: 0, tenants: 0, fullest: 0 };
    for (const r of rows) {
      if (r.tier === ('tenants' as StorageTier)) counts.tenants = Number(r.tenants);
      else {
        counts[r.tier] = Number(r.n);
        if (r.tier === 'hot') counts.fullest = Number(r.most);
      }
    }
    return counts;
  }
}
