import { type Logger, silentLogger } from '../../core/logger.js';
import type { AuditEvent, AuditFilter, AuditStore } from '../../modules/audit/audit-store.js';
import { AUDIT_COLUMNS, type AuditRow, auditFromRow, auditValues, auditWhere } from '../auth-rows.js';
import type { SqliteDatabase } from './sqlite-database.js';
import type { SqliteFileGuard } from './sqlite-file-guard.js';
import { groupCommitFor } from './sqlite-group-commit.js';
import { guardStoreMethods } from './sqlite-store-guard.js';
import { StatementCache } from './statement-cache.js';

/** Appends one event (auditValues): the audit store's batches and a memory write's own event alike. */
export const INSERT_AUDIT_SQL = `INSERT INTO audit_events (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;

/** The audit log on SQLite: `audit_events`, ordered by its rowid `seq`, details as JSON text. */
export class SqliteAuditStore implements AuditStore {
  readonly #db: SqliteDatabase;
  readonly #sql: StatementCache;

  constructor(db: SqliteDatabase, options: { logger?: Logger; file?: SqliteFileGuard } = {}) {
    this.#db = db;
    this.#sql = new StatementCache(db);
    guardStoreMethods<SqliteAuditStore>(
      this,
      { reads: ['list'], writes: ['append', 'purgeBefore'] },
      { dbPath: db.name, logger: options.logger ?? silentLogger, file: options.file },
    );
  }

  async append(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    const insert = this.#sql.get(INSERT_AUDIT_SQL);
    // One transaction for the whole batch (the audit log's group commit), shared with the memory
    // writes of the same turn (the connection's group commit): one lock hand-over for both.
    await groupCommitFor(this.#db).run(() => {
      for (const event of events) insert.run(...auditValues(event));
    });
  }

  async list(filter: AuditFilter): Promise<AuditEvent[]> {
    const { where, values } = auditWhere(filter, () => '?');
    const rows = this.#sql
      .get(`SELECT ${AUDIT_COLUMNS} FROM audit_events ${where} ORDER BY seq DESC LIMIT ?`)
      .all(...values, filter.limit) as AuditRow[];
    return rows.map(auditFromRow);
  }

  async purgeBefore(at: string): Promise<number> {
    return this.#sql.get('DELETE FROM audit_events WHERE at < ?').run(at).changes;
  }
}
