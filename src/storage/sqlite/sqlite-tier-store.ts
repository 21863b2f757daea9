import { type Logger, silentLogger } from '../../core/logger.js';
import type { RequestScope } from '../../core/scope.js';
import {
  movesOf,
  PIN_TAG,
  type PlanChange,
  PROTECTED_TYPES,
  type TierRow,
} from '../../modules/memory/memory-tiers.js';
import type { StorageTier } from '../../modules/memory/memory-types.js';
import type { AppliedPlan, RecordedMove, TierCounts, TierStore } from '../../modules/memory/tier-store.js';
import { LIVE_TENANTS, type TierColumns, tierRowFrom } from '../tier-rows.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

/** Plan rows inserted by one statement, of INPUT_COLUMNS parameters each (SQLite takes 32,766). */
const INPUT_ROWS = 200;
/** tier_plan_input's columns: rid, id, score, tier, from_tier, reason, move_score. */
const INPUT_COLUMNS = 7;

const LIVE = 'deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?)';

/** Tiers and decay on SQLite: a tenant's plan is applied in one write transaction. */
export class SqliteTierStore implements TierStore {
  readonly #db: SqliteDatabase;
  readonly #sql: StatementCache;
  /** Writes the access counts recall batched, so that a plan sees every recall (the memory store's). */
  readonly #flushTouches: () => void;

  constructor(
    db: SqliteDatabase,
    options: { logger?: Logger; file?: SqliteFileGuard; flushTouches?: () => void } = {},
  ) {
    this.#db = db;
    this.#sql = new StatementCache(db);
    this.#flushTouches = options.flushTouches ?? (() => undefined);
    guardStoreMethods<SqliteTierStore>(
      this,
      { reads: ['tenants', 'rows', 'moves', 'tierCounts'], writes: ['apply'] },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async tenants(): Promise<string[]> {
    return this.#sql.get(LIVE_TENANTS).pluck().all() as string[];
  }

  async rows(tenantId: string, now: string): Promise<TierRow[]> {
    this.#flushTouches();
    // Whether it is pinned rather than its tags: most have none, and none of the rest is needed.
    const raw = this.#sql
      .get(
        `SELECT rid, id, type, tags <> '[]' AND EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?),
                importance, access_count, coalesce(accessed_at, created_at), storage_tier, memory_score,
                tier_access_count
         FROM memories WHERE tenant_id = ? AND ${LIVE}`,
      )
      .raw()
      .all(PIN_TAG, tenantId, now) as TierColumns[];
    return raw.map(tierRowFrom);
  }

  async apply(tenantId: string, changes: readonly PlanChange[], now: string): Promise<AppliedPlan> {
    // Every change goes into a temporary table, and the SQL below works from it: inside the write
    // transaction nothing else changes the rows, so the check and the writes agree. The plan's rows are
    // inserted one by one into tier_plan_input (a plain insert, ~3 µs each); sent as one JSON list
    // instead, taking each field out of each element cost twice that, and an UPDATE of memories per row
    // was most of the time of a 98,000-move plan.
    this.#db.exec(
      // No index: every statement scans them once and finds each memory by its rowid.
      `CREATE TEMP TABLE IF NOT EXISTS tier_plan_input (rid INTEGER NOT NULL, id TEXT NOT NULL, score REAL,
         tier TEXT, from_tier TEXT, reason INTEGER, move_score REAL);
       CREATE TEMP TABLE IF NOT EXISTS tier_plan_changes (rid INTEGER NOT NULL, id TEXT NOT NULL, score REAL,
         tier TEXT, from_tier TEXT, reason INTEGER, move_score REAL, had_move INTEGER NOT NULL)`,
    );
    const clear = this.#sql.get('DELETE FROM temp.tier_plan_changes');
    const clearInput = this.#sql.get('DELETE FROM temp.tier_plan_input');
    // INPUT_ROWS rows a statement (a statement a row cost ~3 µs a row, most of it the statement's own
    // run), prepared untimed: the slow-query log's timing of each of a large plan's inserts cost more
    // than they do (the statements below, which do the work, are timed).
    const row = `(${Array.from({ length: INPUT_COLUMNS }, () => '?').join(', ')})`;
    const inputOf = (rows: number) =>
      this.#db.prepare(
        `INSERT INTO temp.tier_plan_input VALUES ${Array.from({ length: rows }, () => row).join(', ')}`,
      );
    const input = inputOf(INPUT_ROWS);
    // Filled with the check: a move is kept (its tier set) only if the memory is live and still in the
    // tier it was planned from, and a demotion (from hot, or to cold) only if the memory is not now
    // pinned or of a protected type (pinned or retyped after the plan read it: the move is stale).
    // CROSS JOIN keeps the input outside, each memory found by its rowid (the id is checked too: a rowid
    // can be another memory's once its own row was deleted); joined the other way, SQLite scans the
    // whole input for each of the tenant's memories.
    const fill = this.#sql.get(
      `INSERT INTO temp.tier_plan_changes (rid, id, score, tier, from_tier, reason, move_score, had_move)
       SELECT m.rid, m.id, i.score,
         CASE WHEN m.storage_tier = i.from_tier AND m.deleted_at IS NULL
           AND (m.expires_at IS NULL OR m.expires_at > ?)
           AND NOT ((i.from_tier = 'hot' OR i.tier = 'cold') AND (m.type IN (${PROTECTED_TYPES.map(() => '?').join(', ')})
             OR (m.tags <> '[]' AND EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)))) THEN i.tier END,
         i.from_tier, i.reason, i.move_score, m.moved_at IS NOT NULL
       FROM temp.tier_plan_input i CROSS JOIN memories m ON m.rid = i.rid AND m.id = i.id AND m.tenant_id = ?`,
    );
    const movedCount = this.#sql.get('SELECT count(*) FROM temp.tier_plan_changes WHERE tier IS NOT NULL');
    const movedIds = this.#sql.get('SELECT id FROM temp.tier_plan_changes WHERE tier IS NOT NULL');
    // A move is recorded in the memory's row (moved_*: its last move; the tier it went to is the row's),
    // written with the rest; the one it replaces is first copied into tier_moves (history).
    const history = this.#sql.get(
      `INSERT INTO tier_moves (tenant_id, memory_id, from_tier, to_tier, reason, score, at)
       SELECT ?, m.id, m.moved_from, m.storage_tier, r.reason, m.moved_score, m.moved_at
       FROM temp.tier_plan_changes c CROSS JOIN memories m ON m.rid = c.rid
         JOIN tier_reasons r ON r.id = m.moved_reason
       WHERE c.tier IS NOT NULL AND c.had_move`,
    );
    const write = (withScore: boolean) =>
      this.#sql.get(
        `UPDATE memories SET memory_score = coalesce(u.score, memory_score), storage_tier = coalesce(u.tier, storage_tier),
           tier_access_count = CASE WHEN u.tier IS NULL THEN tier_access_count ELSE access_count END,
           moved_from = CASE WHEN u.tier IS NULL THEN moved_from ELSE u.from_tier END,
           moved_reason = CASE WHEN u.tier IS NULL THEN moved_reason ELSE u.reason END,
           moved_score = CASE WHEN u.tier IS NULL THEN moved_score ELSE u.move_score END,
           moved_at = CASE WHEN u.tier IS NULL THEN moved_at ELSE ? END
         FROM temp.tier_plan_changes AS u
         WHERE memories.rid = u.rid AND u.score IS ${withScore ? 'NOT NULL' : 'NULL AND u.tier IS NOT NULL'}`,
      );
    // Each distinct reason is a row of tier_reasons, numbered once (every demotion of a plan shares one).
    const addReason = this.#sql.get('INSERT INTO tier_reasons (reason) VALUES (?) ON CONFLICT DO NOTHING');
    const reasonId = this.#sql.get('SELECT id FROM tier_reasons WHERE reason = ?');
    const bump = this.#sql.get(
      "UPDATE brain_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'tier_version'",
    );
    return this.#db
      .transaction((): AppliedPlan => {
        if (changes.length === 0) return { moved: [], stale: 0, rescored: 0 };
        const reasons = new Map<string, number>();
        const place = (reason: string): number => {
          let id = reasons.get(reason);
          if (id === undefined) {
            addReason.run(reason);
            id = reasonId.pluck().get(reason) as number;
            reasons.set(reason, id);
          }
          return id;
        };
        clear.run();
        clearInput.run();
        const planned = movesOf(changes);
        const values: unknown[] = [];
        for (const { id, ref, score, move } of changes) {
          values.push(
            ref,
            id,
            score,
            move?.to ?? null,
            move?.from ?? null,
            move ? place(move.reason) : null,
            move?.score ?? null,
          );
          if (values.length === INPUT_ROWS * INPUT_COLUMNS) {
            input.run(values);
            values.length = 0;
          }
        }
        if (values.length > 0) inputOf(values.length / INPUT_COLUMNS).run(values);
        fill.run(now, ...PROTECTED_TYPES, PIN_TAG, tenantId);
        clearInput.run();
        // Usually every move is still due: only when some are not, find which.
        let moved = planned;
        if ((movedCount.pluck().get() as number) !== planned.length) {
          const still = new Set(movedIds.pluck().all() as string[]);
          moved = planned.filter((m) => still.has(m.id));
        }
        if (moved.length > 0) history.run(tenantId);
        const rescored = write(true).run(now).changes;
        write(false).run(now);
        if (moved.length > 0) bump.run();
        clear.run();
        return { moved, stale: planned.length - moved.length, rescored };
      })
      .immediate();
  }

  async moves(scope: RequestScope, id: string): Promise<RecordedMove[]> {
    // The earlier moves in the order made, then the last one, from the memory's row.
    return this.#sql
      .get(
        `SELECT "from", "to", reason, score, at FROM (
           SELECT 0 AS last, id AS n, from_tier AS "from", to_tier AS "to", reason, score, at FROM tier_moves
           WHERE tenant_id = ? AND memory_id = ?
           UNION ALL
           SELECT 1, 0, m.moved_from, m.storage_tier, r.reason, m.moved_score, m.moved_at
           FROM memories m JOIN tier_reasons r ON r.id = m.moved_reason
           WHERE m.tenant_id = ? AND m.id = ? AND m.moved_at IS NOT NULL
         ) ORDER BY last, n`,
      )
      .all(scope.tenantId, id, scope.tenantId, id) as RecordedMove[];
  }

  async tierCounts(now: string): Promise<TierCounts> {
    const rows = this.#sql
      .get(`SELECT storage_tier AS tier, count(*) AS n FROM memories WHERE ${LIVE} GROUP BY storage_tier`)
      .all(now) as { tier: StorageTier; n: number }[];
    const tenants = this.#sql
      .get(`SELECT count(DISTINCT tenant_id) FROM memories WHERE ${LIVE}`)
      .pluck()
      .get(now) as number;
    const fullest = this.#sql
      .get(
        `SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM memories
           WHERE ${LIVE} AND storage_tier = 'hot' GROUP BY tenant_id)`,
      )
      .pluck()
      .get(now) as number;
    const counts = { hot: 0, warm: 0, cold: 0, tenants, fullest };
    for (const r of rows) counts[r.tier] = r.n;
    return counts;
  }
}
