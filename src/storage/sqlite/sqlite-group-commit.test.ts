import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFiles } from '../../../test/services/temp-files.js';
import { isBrainError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { silentLogger } from '../../core/logger.js';
import { newMemoryRow } from '../contract/memory-store-contract.js';
import { openSqliteDatabase, type SqliteDatabase } from './sqlite-database.js';
import { GROUP_COMMIT_MAX, groupCommitFor, SqliteGroupCommit } from './sqlite-group-commit.js';
import { SqliteMemoryStore } from './sqlite-memory-store.js';
import { migrateSqlite } from './sqlite-migrations.js';

const NOW = '2026-06-01T12:00:00.000Z';
const scope = { tenantId: 't' };

const temp = new TempFiles('brain-group-commit-');
afterEach(() => temp.cleanup());
const tempDb = () => temp.db();

/** A database with one table `t (v TEXT UNIQUE)`, and a second connection to the same file (another process's view). */
function openPair(busyTimeoutMs = 5000): { db: SqliteDatabase; other: Database.Database; file: string } {
  const file = tempDb();
  const db = openSqliteDatabase(file, { busyTimeoutMs, cacheSizeMb: 8 });
  db.exec('CREATE TABLE t (v TEXT NOT NULL UNIQUE)');
  const other = new Database(file, { timeout: 0 });
  temp.onCleanup(() => {
    other.close();
    db.close();
  });
  return { db, other, file };
}

const valuesIn = (db: Database.Database) =>
  (db.prepare('SELECT v FROM t ORDER BY v').all() as { v: string }[]).map((r) => r.v);

/** Uses up the write of this turn that runs at once, so that the writes after it in the turn are batched. */
function takeTheTurn(group: SqliteGroupCommit): void {
  void group.run(() => undefined);
}

describe('sqlite group commit', () => {
  it('runs the first write of a turn at once: one caller writing at a time waits for no turn', async () => {
    const { db, other } = openPair();
    const group = new SqliteGroupCommit(db, { busyTimeoutMs: 5000 });
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const first = group.run(() => insert.run('first'));
    // Committed before run() returned: no turn of the event loop has passed.
    expect(valuesIn(other)).toEqual(['first']);
    const second = group.run(() => insert.run('second'));
    expect(valuesIn(other)).toEqual(['first']);
    await Promise.all([first, second]);
    expect(valuesIn(other)).toEqual(['first', 'second']);
  });

  it('runs the writes of one turn in one transaction, answering each only after the shared COMMIT', async () => {
    const { db, other } = openPair();
    const group = new SqliteGroupCommit(db, { busyTimeoutMs: 5000 });
    takeTheTurn(group);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const seenByOther: string[][] = [];
    const seenBySelf: number[] = [];
    const calls = ['a', 'b', 'c'].map((v) =>
      group.run(() => {
        insert.run(v);
        // Another connection sees none of the batch yet: nothing is committed before the last caller ran.
        seenByOther.push(valuesIn(other));
        seenBySelf.push(valuesIn(db).length);
        return `wrote ${v}`;
      }),
    );
    let answeredBeforeCommit = false;
    for (const call of calls)
      void call.then(() => {
        if (valuesIn(other).length !== 3) answeredBeforeCommit = true;
      });
    expect(await Promise.all(calls)).toEqual(['wrote a', 'wrote b', 'wrote c']);
    expect(seenByOther).toEqual([[], [], []]);
    // The callers ran one after the other in the same transaction: each saw the ones before it.
    expect(seenBySelf).toEqual([1, 2, 3]);
    expect(answeredBeforeCommit).toBe(false);
    expect(valuesIn(other)).toEqual(['a', 'b', 'c']);
  });

  it('rolls back a failing caller alone: it gets its own error and the others are written', async () => {
    const { db, other } = openPair();
    const group = new SqliteGroupCommit(db, { busyTimeoutMs: 5000 });
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const ok1 = group.run(() => insert.run('kept-1').changes);
    const bad = group.run(() => {
      insert.run('rolled-back');
      insert.run('kept-1'); // UNIQUE violation after a first insert of its own
    });
    const thrown = group.run(() => {
      insert.run('also-rolled-back');
      throw new Error('the caller refused its own input');
    });
    const ok2 = group.run(() => insert.run('kept-2').changes);
    const results = await Promise.allSettled([ok1, bad, thrown, ok2]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'SQLITE_CONSTRAINT_UNIQUE' } });
    expect(results[2]).toMatchObject({
      status: 'rejected',
      reason: { message: 'the caller refused its own input' },
    });
    expect(results[3]).toEqual({ status: 'fulfilled', value: 1 });
    expect(valuesIn(other)).toEqual(['kept-1', 'kept-2']);
  });

  it('runs the earlier callers again when a failure ended the whole transaction', async () => {
    const { db, other } = openPair();
    const group = new SqliteGroupCommit(db, { busyTimeoutMs: 5000 });
    takeTheTurn(group);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const rollback = db.prepare('ROLLBACK');
    let firstRuns = 0;
    const first = group.run(() => {
      firstRuns++;
      insert.run('before');
    });
    // What SQLite does on some errors (a full disk): the transaction is gone when the error is thrown.
    const ending = group.run(() => {
      rollback.run();
      throw new Error('the transaction was rolled back under us');
    });
    const after = group.run(() => insert.run('after').changes);
    const results = await Promise.allSettled([first, ending, after]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(firstRuns).toBe(2);
    expect(valuesIn(other)).toEqual(['after', 'before']);
  });

  it('waits for another connection’s write lock without blocking the event loop', async () => {
    const { db, other } = openPair();
    const group = new SqliteGroupCommit(db, { busyTimeoutMs: 5000 });
    other.exec('BEGIN IMMEDIATE');
    other.prepare('INSERT INTO t (v) VALUES (?)').run('other first');
    let settled = false;
    const write = group.run(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('mine').changes);
    void write.finally(() => {
      settled = true;
    });
    const timerStart = performance.now();
    // SQLite's busy handler would hold this process until the lock came free; here a timer still fires.
    const timerMs = await new Promise<number>((resolve) =>
      setTimeout(() => resolve(performance.now() - timerStart), 20),
    );
    expect(timerMs).toBeLessThan(500);
    expect(settled).toBe(false);
    expect(group.waiting).toBe(1);
    other.exec('COMMIT');
    expect(await write).toBe(1);
    expect(valuesIn(other)).toEqual(['mine', 'other first']);
  });

  it('gives every waiting caller SQLITE_BUSY once the lock stayed held past the busy timeout, writing nothing', async () => {
    const { db, other } = openPair();
    const group = new SqliteGroupCommit(db, { busyTimeoutMs: 60 });
    other.exec('BEGIN IMMEDIATE');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const start = performance.now();
    const results = await Promise.allSettled([
      group.run(() => insert.run('x')),
      group.run(() => insert.run('y')),
    ]);
    expect(performance.now() - start).toBeGreaterThanOrEqual(55);
    for (const r of results) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'SQLITE_BUSY' } });
    other.exec('COMMIT');
    expect(valuesIn(other)).toEqual([]);
    // The connection's own busy timeout is back for every other statement.
    expect(db.pragma('busy_timeout', { simple: true })).toBe(60);
    // And the next write goes through once the lock is free.
    await expect(group.run(() => insert.run('z').changes)).resolves.toBe(1);
  });

  it('takes at most GROUP_COMMIT_MAX callers per transaction and runs the rest right after', async () => {
    const { db, other } = openPair();
    const group = new SqliteGroupCommit(db, { busyTimeoutMs: 5000 });
    takeTheTurn(group);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const visibleAtRun: number[] = [];
    const calls = Array.from({ length: GROUP_COMMIT_MAX + 5 }, (_, i) =>
      group.run(() => {
        visibleAtRun.push(valuesIn(other).length);
        insert.run(`v${i}`);
      }),
    );
    await Promise.all(calls);
    // The first batch saw nothing committed; the second started after the first batch's COMMIT.
    expect(visibleAtRun.slice(0, GROUP_COMMIT_MAX).every((n) => n === 0)).toBe(true);
    expect(visibleAtRun.slice(GROUP_COMMIT_MAX).every((n) => n === GROUP_COMMIT_MAX)).toBe(true);
    expect(valuesIn(other)).toHaveLength(GROUP_COMMIT_MAX + 5);
  });

  it('runs a write asked for inside a transaction of the connection at once, in that transaction', async () => {
    const { db, other } = openPair();
    const group = new SqliteGroupCommit(db, { busyTimeoutMs: 5000 });
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    let inner: Promise<unknown> | undefined;
    db.transaction(() => {
      insert.run('outer');
      inner = group.run(() => insert.run('inner').changes);
      expect(valuesIn(db)).toEqual(['inner', 'outer']);
    })();
    await expect(inner).resolves.toBe(1);
    expect(valuesIn(other)).toEqual(['inner', 'outer']);
  });

  it('is one per connection: the memory store and others share it', () => {
    const { db } = openPair();
    expect(groupCommitFor(db)).toBe(groupCommitFor(db));
  });
});

describe('sqlite memory store writes under group commit', () => {
  function openStore() {
    const file = tempDb();
    const db = openSqliteDatabase(file, { busyTimeoutMs: 5000, cacheSizeMb: 8 });
    migrateSqlite(db);
    const store = new SqliteMemoryStore(db, silentLogger);
    const other = new Database(file, { readonly: true });
    temp.onCleanup(() => {
      other.close();
      store.vectors.close();
      db.close();
    });
    return { store, other };
  }
  const memory = (content: string) => newMemoryRow(content, { id: newId('mem'), created_at: NOW });
  const contentsIn = (db: Database.Database) =>
    (db.prepare('SELECT content FROM memories ORDER BY content').all() as { content: string }[]).map(
      (r) => r.content,
    );

  it('concurrent inserts each get their own outcome; a bad row fails only its own call', async () => {
    const { store, other } = openStore();
    const broken = { ...memory('broken'), content: null as unknown as string };
    const calls = [
      store.insert(scope, [memory('first')]),
      store.insert(scope, [memory('same text')]),
      store.insert(scope, [broken, memory('in the broken call')]),
      // Sees the uncommitted row of the second call in the same transaction: a duplicate, not a copy.
      store.insert(scope, [memory('same text')]),
      store.insert(scope, [memory('last')]),
    ];
    const results = await Promise.allSettled(calls);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    const [first, same, failed, again, last] = results;
    expect(first).toMatchObject({ value: [{ status: 'created' }] });
    expect(last).toMatchObject({ value: [{ status: 'created' }] });
    const sameId = same?.status === 'fulfilled' ? same.value[0]?.id : undefined;
    expect(again).toMatchObject({ value: [{ id: sameId, status: 'duplicate' }] });
    // A constraint failure is no storage condition: it stays the driver's error (INTERNAL for surfaces).
    expect(failed?.status === 'rejected' && isBrainError(failed.reason)).toBe(false);
    // The broken call wrote nothing, not even its valid second row; the others are all committed.
    expect(contentsIn(other)).toEqual(['first', 'last', 'same text']);
    const seqs = other.prepare('SELECT change_seq FROM memories ORDER BY change_seq').pluck().all();
    expect(new Set(seqs).size).toBe(3);
  });
});
