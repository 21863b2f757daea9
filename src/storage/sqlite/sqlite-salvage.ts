import fs from 'node:fs';

/**
 * Reads the records of a damaged SQLite file page by page, without SQLite (which refuses the file as a
 * whole once a page it needs is damaged): the same approach as the `sqlite3` shell's `.recover`, which
 * needs the `sqlite_dbpage` table that neither better-sqlite3 nor Debian's sqlite3 12 build includes.
 * It follows the file format (https://www.sqlite.org/fileformat2.html): b-tree pages, cells, overflow
 * chains, records. Pages that do not parse are skipped and counted; nothing here writes.
 */

const MAGIC = 'SQLite format 3\u0000';
const WAL_MAGIC = [0x377f0682, 0x377f0683];
const PAGE_SIZES = [4096, 8192, 16384, 32768, 65536, 1024, 2048, 512];
const TABLE_LEAF = 13;
const TABLE_INTERIOR = 5;
const INDEX_LEAF = 10;
const INDEX_INTERIOR = 2;

export type SqlValue = null | number | bigint | string | Buffer;

/** One record found in a b-tree: its rowid (table trees; null in index trees) and its values. */
export interface FoundRecord {
  rowid: number | bigint | null;
  values: SqlValue[];
}

/** The pages of a database file, with the committed frames of its `-wal` laid over them. */
export class PageFile {
  readonly pageSize: number;
  readonly usable: number;
  readonly pageCount: number;
  /** Whether the 100-byte header names a SQLite file (when not, the page size was guessed). */
  readonly headerValid: boolean;
  readonly #fd: number;
  readonly #wal = new Map<number, Buffer>();

  constructor(dbPath: string) {
    this.#fd = fs.openSync(dbPath, 'r');
    const header = Buffer.alloc(100);
    fs.readSync(this.#fd, header, 0, 100, 0);
    this.headerValid = header.toString('latin1', 0, 16) === MAGIC;
    const fileSize = fs.fstatSync(this.#fd).size;
    const walPageSize = this.#readWal(`${dbPath}-wal`);
    let size = this.headerValid ? header.readUInt16BE(16) : 0;
    if (size === 1) size = 65536;
    if (!PAGE_SIZES.includes(size)) size = walPageSize ?? this.#guessPageSize(fileSize);
    this.pageSize = size;
    this.usable = size - (this.headerValid ? (header[20] ?? 0) : 0);
    const walPages = [...this.#wal.keys()];
    this.pageCount = Math.max(Math.floor(fileSize / size), ...walPages, 0);
  }

  close(): void {
    fs.closeSync(this.#fd);
  }

  /** Page `n` (1-based), or null past the end. */
  page(n: number): Buffer | null {
    if (n < 1 || n > this.pageCount) return null;
    const fromWal = this.#wal.get(n);
    if (fromWal) return fromWal;
    const buffer = Buffer.alloc(this.pageSize);
    const read = fs.readSync(this.#fd, buffer, 0, this.pageSize, (n - 1) * this.pageSize);
    return read === this.pageSize ? buffer : null;
  }

  /** The header's freelist (trunk and leaf pages): free pages hold deleted rows, never read back. */
  freePages(): Set<number> {
    const free = new Set<number>();
    if (!this.headerValid) return free;
    const first = this.page(1);
    let trunk = first ? first.readUInt32BE(32) : 0;
    while (trunk > 0 && !free.has(trunk)) {
      const page = this.page(trunk);
      if (!page) break;
      free.add(trunk);
      const count = page.readUInt32BE(4);
      for (let i = 0; i < count && 8 + i * 4 + 4 <= this.usable; i++) free.add(page.readUInt32BE(8 + i * 4));
      trunk = page.readUInt32BE(0);
    }
    return free;
  }

  /**
   * The frames of every committed transaction in the log, newest last (checksums are not verified: a
   * frame past the last commit, or of an older log generation, is left out by its salt).
   */
  #readWal(walPath: string): number | null {
    let data: Buffer;
    try {
      data = fs.readFileSync(walPath);
    } catch {
      return null;
    }
    if (data.length < 32 || !WAL_MAGIC.includes(data.readUInt32BE(0))) return null;
    const size = data.readUInt32BE(8);
    if (!PAGE_SIZES.includes(size)) return null;
    const salt = [data.readUInt32BE(16), data.readUInt32BE(20)];
    let pending = new Map<number, Buffer>();
    for (let at = 32; at + 24 + size <= data.length; at += 24 + size) {
      if (data.readUInt32BE(at + 8) !== salt[0] || data.readUInt32BE(at + 12) !== salt[1]) break;
      pending.set(data.readUInt32BE(at), data.subarray(at + 24, at + 24 + size));
      if (data.readUInt32BE(at + 4) > 0) {
        for (const [n, page] of pending) this.#wal.set(n, page);
        pending = new Map();
      }
    }
    return size;
  }

  /** With no readable header: the page size at which the most pages start like b-tree pages. */
  #guessPageSize(fileSize: number): number {
    let best = 8192;
    let bestScore = -1;
    for (const size of PAGE_SIZES) {
      const pages = Math.min(Math.floor(fileSize / size), 512);
      let score = 0;
      const byte = Buffer.alloc(1);
      for (let n = 2; n <= pages; n++) {
        fs.readSync(this.#fd, byte, 0, 1, (n - 1) * size);
        if ([TABLE_LEAF, TABLE_INTERIOR, INDEX_LEAF, INDEX_INTERIOR].includes(byte[0] ?? 0)) score++;
      }
      if (score / Math.max(1, pages) > bestScore) {
        bestScore = score / Math.max(1, pages);
        best = size;
      }
    }
    return best;
  }
}

/** A varint at `at`: its value and length (1-9 bytes; values past 2^53 lose precision, never rowids here). */
function varint(buf: Buffer, at: number): [number, number] {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const byte = buf[at + i];
    if (byte === undefined) throw new RangeError('varint past the end of the page');
    value = value * 128 + (byte & 0x7f);
    if (byte < 0x80) return [value, i + 1];
  }
  const last = buf[at + 8];
  if (last === undefined) throw new RangeError('varint past the end of the page');
  return [value * 256 + last, 9];
}

/** Decodes one record (header of serial types, then values); throws when it does not fit. */
export function decodeRecord(payload: Buffer): SqlValue[] {
  const [headerSize, first] = varint(payload, 0);
  if (headerSize > payload.length || headerSize < first) throw new RangeError('record header too long');
  const types: number[] = [];
  for (let at = first; at < headerSize; ) {
    const [type, len] = varint(payload, at);
    types.push(type);
    at += len;
  }
  const values: SqlValue[] = [];
  let at = headerSize;
  const take = (n: number) => {
    if (at + n > payload.length) throw new RangeError('record value past its payload');
    const slice = payload.subarray(at, at + n);
    at += n;
    return slice;
  };
  for (const type of types) {
    if (type === 0) values.push(null);
    else if (type >= 1 && type <= 6) {
      const width = [1, 2, 3, 4, 6, 8][type - 1] as number;
      const big = readSigned(take(width));
      values.push(
        big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big,
      );
    } else if (type === 7) values.push(take(8).readDoubleBE(0));
    else if (type === 8) values.push(0);
    else if (type === 9) values.push(1);
    else if (type >= 12 && type % 2 === 0) values.push(Buffer.from(take((type - 12) / 2)));
    else if (type >= 13) values.push(take((type - 13) / 2).toString('utf8'));
    else throw new RangeError(`reserved serial type ${type}`);
  }
  return values;
}

/** A big-endian two's-complement integer of 1-8 bytes. */
function readSigned(bytes: Buffer): bigint {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  const bits = BigInt(bytes.length * 8);
  return value >= 1n << (bits - 1n) ? value - (1n << bits) : value;
}

/** Reads B-trees and loose pages of one file. */
export class BtreeReader {
  readonly #file: PageFile;
  /** Every page a tree walk reached (interior, leaf or overflow): what is not reached is lost or free. */
  readonly reached = new Set<number>();
  /** Pages that did not parse. */
  readonly damaged = new Set<number>();

  constructor(file: PageFile) {
    this.#file = file;
  }

  /** Every record of the tree rooted at `root` that could be read; damaged branches are skipped. */
  tree(root: number): FoundRecord[] {
    const out: FoundRecord[] = [];
    const stack = [root];
    while (stack.length > 0) {
      const n = stack.pop() as number;
      if (this.reached.has(n)) continue;
      this.reached.add(n);
      const parsed = this.#parse(n, out);
      if (parsed === null) this.damaged.add(n);
      else stack.push(...parsed);
    }
    return out;
  }

  /** The records of one page read as a table leaf, or null when it is not one (for pages no tree reached). */
  loosePage(n: number): FoundRecord[] | null {
    const page = this.#file.page(n);
    if (!page || page[n === 1 ? 100 : 0] !== TABLE_LEAF) return null;
    const out: FoundRecord[] = [];
    return this.#parse(n, out) === null ? null : out;
  }

  /** Reads page `n` into `out`; returns its children (none for a leaf), or null when it does not parse. */
  #parse(n: number, out: FoundRecord[]): number[] | null {
    const page = this.#file.page(n);
    if (!page) return null;
    const base = n === 1 ? 100 : 0;
    const type = page[base];
    if (type !== TABLE_LEAF && type !== TABLE_INTERIOR && type !== INDEX_LEAF && type !== INDEX_INTERIOR)
      return null;
    const leaf = type === TABLE_LEAF || type === INDEX_LEAF;
    const cells = page.readUInt16BE(base + 3);
    const pointers = base + (leaf ? 8 : 12);
    if (pointers + cells * 2 > this.#file.usable) return null;
    const children: number[] = [];
    if (!leaf) children.push(page.readUInt32BE(base + 8));
    const found: FoundRecord[] = [];
    try {
      for (let i = 0; i < cells; i++) {
        const cell = page.readUInt16BE(pointers + i * 2);
        if (cell < pointers || cell >= this.#file.usable) return null;
        this.#cell(page, cell, type, children, found);
      }
    } catch {
      return null;
    }
    out.push(...found);
    return children.filter((c) => c >= 1 && c <= this.#file.pageCount);
  }

  #cell(page: Buffer, at: number, type: number, children: number[], out: FoundRecord[]): void {
    let pos = at;
    if (type === TABLE_INTERIOR || type === INDEX_INTERIOR) {
      children.push(page.readUInt32BE(pos));
      pos += 4;
      if (type === TABLE_INTERIOR) return;
    }
    const [size, sizeLen] = varint(page, pos);
    pos += sizeLen;
    let rowid: number | null = null;
    if (type === TABLE_LEAF) {
      const [id, idLen] = varint(page, pos);
      rowid = id;
      pos += idLen;
    }
    const payload = this.#payload(page, pos, size, type === TABLE_LEAF);
    out.push({ rowid, values: decodeRecord(payload) });
  }

  /** A cell's payload: its part on the page and the rest along its overflow chain. */
  #payload(page: Buffer, at: number, size: number, tableLeaf: boolean): Buffer {
    const u = this.#file.usable;
    const x = tableLeaf ? u - 35 : Math.floor(((u - 12) * 64) / 255) - 23;
    if (size <= x) {
      if (at + size > u) throw new RangeError('cell past the end of the page');
      return page.subarray(at, at + size);
    }
    const m = Math.floor(((u - 12) * 32) / 255) - 23;
    const k = m + ((size - m) % (u - 4));
    const local = k <= x ? k : m;
    if (at + local + 4 > u) throw new RangeError('cell past the end of the page');
    const parts = [page.subarray(at, at + local)];
    let remaining = size - local;
    let next = page.readUInt32BE(at + local);
    const seen = new Set<number>();
    while (remaining > 0) {
      if (next === 0 || seen.has(next)) throw new RangeError('overflow chain broken');
      seen.add(next);
      const overflow = this.#file.page(next);
      if (!overflow) throw new RangeError('overflow page past the end');
      this.reached.add(next);
      const take = Math.min(remaining, u - 4);
      parts.push(overflow.subarray(4, 4 + take));
      remaining -= take;
      next = overflow.readUInt32BE(0);
    }
    return Buffer.concat(parts);
  }
}

/** One object of the old file's schema (sqlite_master), as far as it could be read. */
export interface SchemaEntry {
  type: string;
  name: string;
  rootpage: number;
  sql: string | null;
}

/** The schema table (the tree at page 1): every entry that decodes. */
export function readSchema(reader: BtreeReader): SchemaEntry[] {
  return reader
    .tree(1)
    .filter((r) => r.values.length >= 5 && typeof r.values[1] === 'string')
    .map((r) => ({
      type: String(r.values[0]),
      name: String(r.values[1]),
      rootpage: typeof r.values[3] === 'number' ? r.values[3] : 0,
      sql: typeof r.values[4] === 'string' ? r.values[4] : null,
    }));
}
