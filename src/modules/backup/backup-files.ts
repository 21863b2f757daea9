import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { BrainError, isBrainError } from '../../core/errors.js';
import { CHECKSUM_SUFFIX, partialName, partialOwner } from './backup-names.js';

/** A partial file whose writer is alive is left alone unless it is older than this. */
const PARTIAL_MAX_AGE_MS = 24 * 3_600_000;

/** A sha256 of the bytes that pass through, without holding them. */
function hashing(): { tap: Transform; digest: () => string; bytes: () => number } {
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { tap, digest: () => hash.digest('hex'), bytes: () => bytes };
}

/** fsync of a file or directory by path (a directory's, so that a rename in it survives a crash). */
export function fsyncPath(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether an error is the disk being full (ENOSPC, EDQUOT, or SQLite's SQLITE_FULL). */
export function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  if (isBrainError(error)) return error.code === 'STORAGE_FULL';
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/**
 * Gzips `source` into `file` through a `.partial` name that only a complete, fsynced file leaves:
 * until the rename, nothing at `file` exists. Returns the sha256 and size of the compressed file.
 */
export async function writeGzipped(
  source: Readable,
  file: string,
): Promise<{ sha256: string; bytes: number }> {
  const partial = partialName(file);
  const hash = hashing();
  try {
    await pipeline(
      source,
      zlib.createGzip({ level: 6 }),
      hash.tap,
      fs.createWriteStream(partial, { flags: 'wx' }),
    );
    fsyncPath(partial);
    return { sha256: hash.digest(), bytes: hash.bytes() };
  } catch (error) {
    source.destroy();
    fs.rmSync(partial, { force: true });
    throw error;
  }
}

/** Moves a completed `.partial` (from writeGzipped) into place and makes the rename durable. */
export function publish(file: string): void {
  fs.renameSync(partialName(file), file);
  fsyncPath(path.dirname(file));
}

/** Writes `<file>.sha256` (sha256sum's format, so `sha256sum -c` checks it) durably, through a partial. */
export function writeChecksum(file: string, sha256: string): void {
  const target = `${file}${CHECKSUM_SUFFIX}`;
  const partial = partialName(target);
  try {
    fs.writeFileSync(partial, `${sha256}  ${path.basename(file)}\n`, { flag: 'wx' });
    fsyncPath(partial);
    fs.renameSync(partial, target);
  } catch (error) {
    fs.rmSync(partial, { force: true });
    throw error;
  }
}

/** The sha256 recorded beside a backup, or null when there is no readable checksum file. */
export function readChecksum(file: string): string | null {
  let text: string;
  try {
    text = fs.readFileSync(`${file}${CHECKSUM_SUFFIX}`, 'utf8');
  } catch {
    return null;
  }
  const m = /^([0-9a-f]{64})\s/i.exec(text);
  return m ? (m[1] as string).toLowerCase() : null;
}

/** sha256 of a file, streamed. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** What comparing a backup with its checksum file found. */
export type ChecksumState = 'ok' | 'mismatch' | 'missing';

const checked = new Map<string, { size: number; mtimeMs: number; state: ChecksumState }>();

/**
 * A backup against its `.sha256`. The answer is remembered per process for a file of the same size and
 * time, so that health checks do not read gigabytes again each time.
 */
export async function checksumState(file: string, options: { cache?: boolean } = {}): Promise<ChecksumState> {
  const expected = readChecksum(file);
  if (expected === null) return 'missing';
  const stat = fs.statSync(file);
  const key = `${file}\u0000${expected}`;
  const known = checked.get(key);
  if (options.cache && known && known.size === stat.size && known.mtimeMs === stat.mtimeMs)
    return known.state;
  const state: ChecksumState = (await sha256OfFile(file)) === expected ? 'ok' : 'mismatch';
  checked.set(key, { size: stat.size, mtimeMs: stat.mtimeMs, state });
  return state;
}

/**
 * Decompresses a backup into `target` (through a partial), hashing the compressed bytes on the way so
 * the checksum costs no second read. Throws INVALID_INPUT naming `field` when the file is not gzip or
 * is cut short. Returns the compressed file's sha256.
 */
export async function gunzipTo(file: string, target: string, field: string): Promise<string> {
  const partial = partialName(target);
  const hash = hashing();
  try {
    await pipeline(
      fs.createReadStream(file),
      hash.tap,
      zlib.createGunzip(),
      fs.createWriteStream(partial, { flags: 'wx' }),
    );
    fsyncPath(partial);
    fs.renameSync(partial, target);
    return hash.digest();
  } catch (error) {
    fs.rmSync(partial, { force: true });
    if (isDiskFull(error))
      throw new BrainError(
        'STORAGE_FULL',
        `no room to decompress ${path.basename(file)} into ${path.dirname(target)}: free space there, then retry`,
        { path: path.dirname(target) },
        { cause: error },
      );
    const code = (error as { code?: string }).code ?? '';
    if (code.startsWith('Z_') || code === 'ERR_STREAM_PREMATURE_CLOSE')
      throw new BrainError(
        'INVALID_INPUT',
        `${field}: ${file} is not a complete gzip file (${(error as Error).message}); it is damaged or not a Brain backup`,
        { issues: [{ field, message: 'not a complete gzip file' }] },
      );
    throw error;
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * Removes what interrupted writers left in `dir`: `.partial` files (those `only` accepts, when given)
 * whose process is gone (a kill -9 mid-backup) or that are older than a day, and checksum files without
 * their backup. Returns the names removed.
 */
export function removeStale(
  dir: string,
  isBackup: (name: string) => boolean,
  options: { only?: (name: string) => boolean; now?: number } = {},
): string[] {
  const now = options.now ?? Date.now();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const remove = (name: string) => {
    fs.rmSync(path.join(dir, name), { force: true, recursive: true });
    removed.push(name);
  };
  for (const name of names) {
    const owner = partialOwner(name);
    if (owner === null || (options.only && !options.only(name))) continue;
    const age = now - (fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.mtimeMs ?? now);
    if (!alive(owner) || age > PARTIAL_MAX_AGE_MS) remove(name);
  }
  const left = names.filter((name) => !removed.includes(name));
  const present = new Set(left);
  for (const name of left) {
    if (!name.endsWith(CHECKSUM_SUFFIX)) continue;
    // A checksum without its backup: a writer stopped between its two renames (or is between them
    // now, when its partial is still there).
    const backup = name.slice(0, -CHECKSUM_SUFFIX.length);
    const writing = left.some((n) => n.startsWith(`${backup}.`) && partialOwner(n) !== null);
    if (isBackup(backup) && !present.has(backup) && !writing) remove(name);
  }
  return removed;
}

/**
 * A readable that ends when `source` does and `done` resolves (a child process's output and its exit
 * 0), and errors when either fails. Destroyed early (the disk filled), it calls `abort` so that the
 * producer does not wait forever on a pipe nobody reads.
 */
export function guardedStream(source: Readable, done: Promise<void>, abort: () => void): Readable {
  const out = new PassThrough();
  let ended = false;
  let finished = false;
  const maybeEnd = () => {
    if (ended && finished) out.end();
  };
  source.on('data', (chunk) => {
    if (!out.write(chunk)) source.pause();
  });
  out.on('drain', () => source.resume());
  out.on('close', () => {
    if (!(ended && finished)) abort();
  });
  source.on('end', () => {
    ended = true;
    maybeEnd();
  });
  source.on('error', (error) => out.destroy(error));
  done.then(
    () => {
      finished = true;
      maybeEnd();
    },
    (error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  return out;
}
