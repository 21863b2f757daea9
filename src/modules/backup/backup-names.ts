/**
 * Backup file names: `brain_YYYYMMDD_HHMMSS.db.gz` (SQLite) and `brain_YYYYMMDD_HHMMSS.pgdump.gz`
 * (PostgreSQL, pg_dump's custom format), the time in UTC, with `_N` added when a name of that second is
 * taken. Beside each, `<name>.sha256` in sha256sum's format. Anything being written ends in
 * `.<pid>.partial` and is never taken for a backup.
 */

/** What a backup holds: a SQLite database file, or a PostgreSQL custom-format dump. */
export type BackupKind = 'db' | 'pgdump';

export const BACKUP_KINDS: readonly BackupKind[] = ['db', 'pgdump'];

/** One backup file as its name describes it. */
export interface BackupName {
  name: string;
  kind: BackupKind;
  /** When it was taken (UTC, to the second). */
  time: Date;
}

const NAME = /^brain_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})(?:_(\d{1,4}))?\.(db|pgdump)\.gz$/;
/** A partial file, or the journal SQLite keeps beside one while writing it. */
const PARTIAL = /\.(\d+)\.partial(?:-journal|-wal|-shm)?$/;
export const CHECKSUM_SUFFIX = '.sha256';

const two = (n: number) => String(n).padStart(2, '0');

/** `brain_20260131_120000` for 2026-01-31T12:00:00Z (milliseconds dropped). */
export function timeStamp(time: Date): string {
  return (
    `${time.getUTCFullYear()}${two(time.getUTCMonth() + 1)}${two(time.getUTCDate())}_` +
    `${two(time.getUTCHours())}${two(time.getUTCMinutes())}${two(time.getUTCSeconds())}`
  );
}

/** The name of a backup of `kind` taken at `time`; `sequence` > 1 for a second one in the same second. */
export function backupName(kind: BackupKind, time: Date, sequence = 1): string {
  return `brain_${timeStamp(time)}${sequence > 1 ? `_${sequence}` : ''}.${kind}.gz`;
}

/** The backup a file name describes, or null when it is not a backup's name (a partial, a checksum). */
export function parseBackupName(name: string): BackupName | null {
  const m = NAME.exec(name);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as number[];
  const time = new Date(
    Date.UTC(year as number, (month as number) - 1, day, hour as number, minute as number, second as number),
  );
  // 20261332_…: a name that looks right but is no real time.
  if (Number.isNaN(time.getTime()) || timeStamp(time) !== `${m[1]}${m[2]}${m[3]}_${m[4]}${m[5]}${m[6]}`)
    return null;
  return { name, kind: m[8] as BackupKind, time };
}

/** The first free name of `kind` at `time`, given the names already in the directory. */
export function nextBackupName(kind: BackupKind, time: Date, taken: ReadonlySet<string>): string {
  for (let sequence = 1; ; sequence++) {
    const name = backupName(kind, time, sequence);
    if (!taken.has(name) && !taken.has(`${name}${CHECKSUM_SUFFIX}`)) return name;
  }
}

/** `<file>.<pid>.partial`: what a file is written as before it is complete. */
export function partialName(file: string, pid: number = process.pid): string {
  return `${file}.${pid}.partial`;
}

/** The process that writes a partial file, or null when the name is not a partial's. */
export function partialOwner(name: string): number | null {
  const m = PARTIAL.exec(name);
  return m ? Number(m[1]) : null;
}

/** ISO week of a UTC date as `2026-W05` (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(time: Date): string {
  const day = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  // The Thursday of this week decides the week's year.
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${two(week)}`;
}

/** The UTC day of a date as `2026-01-31`. */
export function utcDay(time: Date): string {
  return time.toISOString().slice(0, 10);
}
