/**
 * The vector index build, run in a worker thread (see VectorIndexBuilder): one job per worker. It opens its
 * own read-only connection to the database file, starts from the snapshot the main thread serves (or the
 * saved copy, or nothing), applies every change since in change_seq order, writes the result to a file and
 * posts it. Nothing here runs on the main thread's event loop.
 */
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type usearch from 'usearch';
import { newHnswIndex } from './ann-index.js';
import { blobToInt8 } from './sqlite-memory-rows.js';
import type { BuildJob, WorkerMessage } from './vector-index-builder.js';
import { loadVectorIndex, saveVectorIndex } from './vector-index-file.js';

type UsearchIndex = InstanceType<typeof usearch.Index>;

/** Keys checked per contains() call when a saved index is validated against the rows. */
const CHECK_CHUNK = 4096;

interface ChangeRow {
  rid: number;
  project: string | null;
  deleted_at: string | null;
  model: string | null;
  embedding: Buffer | null;
  change_seq: number;
}

/** The live vectors of one read, in one growable int8 matrix (row i is rids[i]). */
class VectorRows {
  rids: number[] = [];
  #vectors: Int8Array;
  readonly #dimensions: number;

  constructor(dimensions: number) {
    this.#dimensions = dimensions;
    this.#vectors = new Int8Array(dimensions * 1024);
  }

  push(rid: number, vector: Int8Array): void {
    const at = this.rids.length * this.#dimensions;
    if (at + this.#dimensions > this.#vectors.length) {
      const grown = new Int8Array(this.#vectors.length * 2);
      grown.set(this.#vectors);
      this.#vectors = grown;
    }
    this.#vectors.set(vector, at);
    this.rids.push(rid);
  }

  get vectors(): Int8Array {
    return this.#vectors.subarray(0, this.rids.length * this.#dimensions);
  }
}

function post(message: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(message, transfer);
}

function maxSeq(db: Database.Database, tenantId: string): number {
  const row = db.prepare('SELECT max(change_seq) AS s FROM memories WHERE tenant_id = ?').get(tenantId) as {
    s: number | null;
  };
  return row.s ?? 0;
}

/**
 * The saved copy of the index, when it matches this database and every vector it should hold is in it;
 * null otherwise (logged): the job then builds from the rows.
 */
function loadSaved(db: Database.Database, job: BuildJob, index: UsearchIndex): number | null {
  const persist = job.persist;
  if (!persist) return null;
  try {
    const loaded = loadVectorIndex(persist.dir, persist.identity, index);
    if (!loaded) return null;
    if (loaded.seq > maxSeq(db, job.tenantId)) throw new Error('saved index is newer than the database');
    // Every vector of a row unchanged since the save must be in it, checked in chunks.
    const rows = db
      .prepare(
        `SELECT m.rid FROM memories m JOIN memory_embeddings e ON e.rid = m.rid
         WHERE m.tenant_id = ? AND m.change_seq <= ? AND m.deleted_at IS NULL AND e.model = ?
           AND length(e.embedding) = ?`,
      )
      .pluck()
      .iterate(job.tenantId, loaded.seq, job.model, job.dimensions) as IterableIterator<number>;
    const chunk = new BigUint64Array(CHECK_CHUNK);
    let pending = 0;
    const check = () => {
      const present = index.contains(chunk.subarray(0, pending)) as boolean[];
      pending = 0;
      if (present.includes(false)) throw new Error('saved index lacks vectors the database holds');
    };
    for (const rid of rows) {
      chunk[pending++] = BigInt(rid);
      if (pending === CHECK_CHUNK) check();
    }
    if (pending > 0) check();
    return loaded.seq;
  } catch (error) {
    post({
      type: 'log',
      level: 'warn',
      message: 'saved vector index not used; rebuilding it',
      error: String(error),
    });
    return null;
  }
}

/** Reads every change after `fromSeq` in one read transaction: removals, live vectors and the new seq. */
function readChanges(db: Database.Database, job: BuildJob, fromSeq: number) {
  const live = new VectorRows(job.dimensions);
  const changed: number[] = [];
  let seq = fromSeq;
  const rows = db
    .prepare(
      `SELECT m.rid, m.project, m.deleted_at, m.change_seq, e.model, e.embedding
       FROM memories m INDEXED BY memories_change LEFT JOIN memory_embeddings e ON e.rid = m.rid
       WHERE m.tenant_id = ? AND m.change_seq > ? ORDER BY m.change_seq`,
    )
    .iterate(job.tenantId, fromSeq) as IterableIterator<ChangeRow>;
  for (const row of rows) {
    changed.push(row.rid);
    seq = row.change_seq;
    // Only vectors of the model this index is keyed by: after a model change, the others never enter it.
    if (row.deleted_at !== null || !row.embedding || row.model !== job.model) continue;
    const vector = blobToInt8(row.embedding);
    if (vector.length === job.dimensions) live.push(row.rid, vector);
  }
  return { live, changed, seq };
}

/** Vectors per project among those the index holds at `seq` (read in the same transaction). */
function projectCounts(db: Database.Database, job: BuildJob, seq: number): [string, number][] {
  return db
    .prepare(
      `SELECT coalesce(m.project, '') AS project, count(*) AS n
       FROM memories m JOIN memory_embeddings e ON e.rid = m.rid
       WHERE m.tenant_id = ? AND m.change_seq <= ? AND m.deleted_at IS NULL AND e.model = ?
         AND length(e.embedding) = ?
       GROUP BY 1`,
    )
    .raw(true)
    .all(job.tenantId, seq, job.model, job.dimensions) as [string, number][];
}

/** Adds the rows to the index `chunk` at a time, through one reused float buffer (usearch copies others). */
function addAll(index: UsearchIndex, job: BuildJob, live: VectorRows): void {
  const chunk = Math.max(1, job.chunk);
  const keys = new BigUint64Array(chunk);
  const floats = new Float32Array(chunk * job.dimensions);
  const vectors = live.vectors;
  for (let start = 0; start < live.rids.length; start += chunk) {
    const n = Math.min(chunk, live.rids.length - start);
    for (let i = 0; i < n; i++) keys[i] = BigInt(live.rids[start + i] as number);
    // usearch rescales each vector itself, so the int8 values go in as they are.
    floats.set(vectors.subarray(start * job.dimensions, (start + n) * job.dimensions));
    index.add(keys.subarray(0, n), floats.subarray(0, n * job.dimensions), job.threads);
  }
}

function run(job: BuildJob): void {
  const db = new Database(job.dbPath, { readonly: true, fileMustExist: true, timeout: job.busyTimeoutMs });
  try {
    const index = newHnswIndex(job.dimensions, job.hnsw);
    let fromSeq = 0;
    let loaded = false;
    let savedSeq = job.persist?.savedSeq ?? 0;
    if (job.base) {
      // The main thread's own snapshot, written by the previous job moments ago: trusted as it is.
      index.load(job.base.file);
      fromSeq = job.base.seq;
    } else {
      const saved = loadSaved(db, job, index);
      if (saved !== null) {
        fromSeq = saved;
        savedSeq = saved;
        loaded = true;
      }
    }
    // One short read transaction: the changes and the per-project counts describe the same snapshot. The
    // long part (the HNSW inserts) runs after it, so the WAL is not pinned while the graph is built.
    const read = db.transaction(() => {
      const changes = readChanges(db, job, fromSeq);
      return { ...changes, counts: projectCounts(db, job, changes.seq) };
    });
    const { live, changed, seq, counts } = read.deferred();
    const fresh = index.size() === 0;
    if (fresh && live.rids.length >= job.matrixMin) {
      // A first build takes seconds to minutes: meanwhile the main thread searches this exact copy.
      const vectors = live.vectors.slice();
      const rids = Float64Array.from(live.rids);
      post({ type: 'matrix', seq, rids, vectors, counts }, [vectors.buffer, rids.buffer]);
    }
    for (const rid of changed) {
      const key = BigInt(rid);
      if (!fresh && index.contains(key)) index.remove(key);
    }
    addAll(index, job, live);
    if (job.persist && seq - savedSeq >= job.persist.saveAfterChanges) {
      try {
        saveVectorIndex(job.persist.dir, job.persist.identity, index, seq);
        savedSeq = seq;
      } catch (error) {
        post({
          type: 'log',
          level: 'warn',
          message: 'could not save the vector index; the next start rebuilds it',
          error: String(error),
        });
      }
    }
    const file = path.join(job.snapshotDir, `${job.name}-${seq}-${Date.now().toString(36)}.usearch`);
    index.save(file);
    post({ type: 'ready', file, seq, size: index.size(), savedSeq, loaded, counts });
  } finally {
    db.close();
  }
}

run(workerData as BuildJob);
