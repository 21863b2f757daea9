import type Database from 'better-sqlite3';
import type { StatementObserver } from '../../modules/observability/slow-query-log.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * The observer of each connection's statements (the slow-query log). Kept beside the connection rather
 * than passed to every store: it is one concern of the connection that all of them share.
 */
const observers = new WeakMap<SqliteDatabase, StatementObserver>();

/**
 * Times every statement prepared on `db` from now on through {@link prepareStatement} or a
 * {@link StatementCache}, and reports it to `observer`. Call it before the stores are built.
 */
export function observeStatements(db: SqliteDatabase, observer: StatementObserver): void {
  observers.set(db, observer);
}

/**
 * Prepares `sql` on `db`: timed when the connection is observed, else the plain statement (no cost).
 * Stores hold what they prepare once in their constructor; queries of many shapes use the cache.
 */
export function prepareStatement(db: SqliteDatabase, sql: string): Database.Statement {
  const statement = db.prepare(sql);
  const observer = observers.get(db);
  return observer ? timed(statement, observer) : statement;
}

/**
 * The statement with `run`, `get`, `all` and `iterate` timed; every other member is the statement's own
 * (the mode setters, `pluck()`, `raw()`, …, return the timed one so that chains stay timed). An iterator
 * counts the time spent in its own steps until it is done, not the caller's work between rows.
 */
function timed(statement: Database.Statement, observer: StatementObserver): Database.Statement {
  const sql = statement.source;
  const report = (start: number) => observer.observe(sql, performance.now() - start);
  const own = new Map<PropertyKey, unknown>([
    [
      'run',
      (...params: unknown[]) => {
        const start = performance.now();
        try {
          return statement.run(...params);
        } finally {
          report(start);
        }
      },
    ],
    [
      'get',
      (...params: unknown[]) => {
        const start = performance.now();
        try {
          return statement.get(...params);
        } finally {
          report(start);
        }
      },
    ],
    [
      'all',
      (...params: unknown[]) => {
        const start = performance.now();
        try {
          return statement.all(...params);
        } finally {
          report(start);
        }
      },
    ],
    ['iterate', (...params: unknown[]) => timedIterator(statement, params, sql, observer)],
  ]);
  const proxy: Database.Statement = new Proxy(statement, {
    get(target, key) {
      const mine = own.get(key);
      if (mine) return mine;
      const value = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      // better-sqlite3's methods need the real statement as `this`; a setter that returns it returns us.
      const bound = (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result === target ? proxy : result;
      };
      own.set(key, bound);
      return bound;
    },
  });
  return proxy;
}

function timedIterator(
  statement: Database.Statement,
  params: unknown[],
  sql: string,
  observer: StatementObserver,
): IterableIterator<unknown> {
  let spent = 0;
  let done = false;
  const step = <T>(work: () => T): T => {
    const start = performance.now();
    try {
      return work();
    } catch (error) {
      finish();
      throw error;
    } finally {
      spent += performance.now() - start;
    }
  };
  const finish = () => {
    if (done) return;
    done = true;
    observer.observe(sql, spent);
  };
  const rows = step(() => statement.iterate(...params));
  return {
    next() {
      const result = step(() => rows.next());
      if (result.done) finish();
      return result;
    },
    return(value?: unknown) {
      const result = step(() => rows.return?.(value) ?? { done: true as const, value });
      finish();
      return result;
    },
    [Symbol.iterator]() {
      return this;
    },
  };
}

/**
 * Prepared statements by SQL text. Queries are built from a small set of filter shapes, so caching by
 * text turns every repeated query into a prepared-statement call without a compile on the hot path.
 */
export class StatementCache {
  readonly #db: SqliteDatabase;
  readonly #max: number;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(db: SqliteDatabase, max = 512) {
    this.#db = db;
    this.#max = max;
  }

  get(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = prepareStatement(this.#db, sql);
      // A burst of unusual shapes must not grow the cache without bound; start over instead.
      if (this.#statements.size >= this.#max) this.#statements.clear();
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
