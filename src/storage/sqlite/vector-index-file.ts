import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type usearch from 'usearch';

/** What a saved index was built from; a saved index is used only when all of it matches. */
export interface IndexIdentity {
  /** The database's instance id (brain_meta), so an index never serves another database. */
  instanceId: string;
  tenantId: string;
  model: string;
  dimensions: number;
  connectivity: number;
}

interface IndexMeta extends IndexIdentity {
  format: 1;
  /** Highest change_seq the saved index reflects. */
  seq: number;
  size: number;
  /** sha256 of the index file: usearch trusts the file it loads (a damaged one can hang it), so is checked first. */
  sha256: string;
  savedAt: string;
}

const FORMAT = 1;

/** The directory that holds a database file's saved vector indexes: `<db file>.vectors`. */
export function vectorIndexDirFor(dbPath: string): string | null {
  if (dbPath === ':memory:' || dbPath === '') return null;
  return `${dbPath}.vectors`;
}

function baseName(identity: Pick<IndexIdentity, 'tenantId' | 'model'>): string {
  return createHash('sha256')
    .update(`${identity.tenantId}\u0000${identity.model}`)
    .digest('hex')
    .slice(0, 24);
}

/** sha256 of a file, read in 1 MiB chunks so that a large index does not sit in memory twice. */
function fileSha256(file: string): string {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n = fs.readSync(fd, chunk); n > 0; n = fs.readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function writeAtomically(file: string, write: (tmp: string) => void): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    write(tmp);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Saves an index and its meta next to the database. Each file is written to a temporary name and renamed,
 * index first. A reader that finds an index and a meta from different saves (another process saved in
 * between) fails the checksum and rebuilds.
 */
export function saveVectorIndex(
  dir: string,
  identity: IndexIdentity,
  index: InstanceType<typeof usearch.Index>,
  seq: number,
): void {
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, baseName(identity));
  let sha256 = '';
  writeAtomically(`${base}.usearch`, (tmp) => {
    index.save(tmp);
    sha256 = fileSha256(tmp);
  });
  const meta: IndexMeta = {
    format: FORMAT,
    ...identity,
    seq,
    size: index.size(),
    sha256,
    savedAt: new Date().toISOString(),
  };
  writeAtomically(`${base}.json`, (tmp) => fs.writeFileSync(tmp, `${JSON.stringify(meta)}\n`));
}

/**
 * The saved index for `identity`, loaded into `index`, and the change_seq it reflects; null when there is
 * none, or it was built for something else, or it cannot be read (the caller then builds from scratch).
 */
export function loadVectorIndex(
  dir: string,
  identity: IndexIdentity,
  index: InstanceType<typeof usearch.Index>,
): { seq: number } | null {
  const base = path.join(dir, baseName(identity));
  let meta: IndexMeta;
  try {
    meta = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8')) as IndexMeta;
  } catch {
    return null;
  }
  const matches =
    meta.format === FORMAT &&
    meta.instanceId === identity.instanceId &&
    meta.tenantId === identity.tenantId &&
    meta.model === identity.model &&
    meta.dimensions === identity.dimensions &&
    meta.connectivity === identity.connectivity &&
    Number.isSafeInteger(meta.seq);
  if (!matches) return null;
  const file = `${base}.usearch`;
  if (fileSha256(file) !== meta.sha256)
    throw new Error(`vector index file ${file} does not match its checksum`);
  index.load(file);
  if (index.size() !== meta.size)
    throw new Error(`vector index file ${file} holds ${index.size()} vectors, not ${meta.size}`);
  return { seq: meta.seq };
}
