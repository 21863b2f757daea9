import type { AuditEvent, AuditFilter, AuditStore } from '../../modules/audit/audit-store.js';
import { AUDIT_COLUMNS, type AuditRow, auditFromRow, auditValues, auditWhere } from '../auth-rows.js';
import type { PgDatabase } from './pg-database.js';

/**
 * The statement that appends events given as {@link auditColumns} at parameters `$first` to
 * `$first+7`: eight arrays unnested in order, so `seq` follows the events' order. With `when`, only
 * when that condition holds (a memory write's event joined to the write's own statement).
 */
export function auditInsertSql(first: number, when?: string): string {
  const arrays = Array.from({ length: 8 }, (_, i) => `$${first + i}::text[]`).join(', ');
  return `INSERT INTO audit_events (${AUDIT_COLUMNS})
       SELECT id, at, principal, tenant_id, action, target, outcome, details
       FROM unnest(${arrays})
         WITH ORDINALITY AS e(id, at, principal, tenant_id, action, target, outcome, details, n)
       ${when ? `WHERE ${when} ` : ''}ORDER BY n`;
}

/** The parameters of {@link auditInsertSql}: one array per column. */
export function auditColumns(events: readonly AuditEvent[]): (string | null)[][] {
  const columns: (string | null)[][] = Array.from({ length: 8 }, () => []);
  for (const event of events) {
    auditValues(event).forEach((value, i) => {
      columns[i]?.push(value);
    });
  }
  return columns;
}

/**
 * The audit log on PostgreSQL, shared by every replica: `audit_events`, ordered by its identity `seq`,
 * details as JSON text. Queries read the primary: an operator looking for what just happened must see it.
 */
export class PgAuditStore implements AuditStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async append(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.#db.query(auditInsertSql(1), auditColumns(events), this.#db.primary);
  }

  async list(filter: AuditFilter): Promise<AuditEvent[]> {
    const { where, values } = auditWhere(filter, (n) => `$${n}`);
    const { rows } = await this.#db.query<AuditRow>(
      `SELECT ${AUDIT_COLUMNS} FROM audit_events ${where} ORDER BY seq DESC LIMIT $${values.length + 1}`,
      [...values, filter.limit],
      this.#db.primary,
    );
    return rows.map(auditFromRow);
  }

  async purgeBefore(at: string): Promise<number> {
    const { rowCount } = await this.#db.query(
      'DELETE FROM audit_events WHERE at < $1',
      [at],
      this.#db.primary,
    );
    return rowCount ?? 0;
  }
}
