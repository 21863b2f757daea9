import { type BackupName, isoWeek, utcDay } from './backup-names.js';

const DAY_MS = 86_400_000;

/** How long each tier keeps backups, in days (0: the tier keeps none). */
export interface RetentionPolicy {
  /** Every backup younger than this is kept (hourly backups: BRAIN_BACKUP_KEEP_HOURLY_DAYS). */
  hourlyDays: number;
  /** The newest backup of each UTC day younger than this (BRAIN_BACKUP_KEEP_DAILY_DAYS). */
  dailyDays: number;
  /** The newest backup of each ISO week younger than this (BRAIN_BACKUP_KEEP_WEEKLY_DAYS). */
  weeklyDays: number;
}

/** Why a backup is kept. */
export type KeepReason = 'newest' | 'protected' | 'hourly' | 'daily' | 'weekly';

export interface RetentionPlan {
  keep: { backup: BackupName; reason: KeepReason }[];
  remove: BackupName[];
}

/**
 * Which backups the retention keeps at `now`, over their names and times only (no I/O): every backup
 * younger than `hourlyDays`; the newest of each UTC day younger than `dailyDays`; the newest of each
 * ISO week younger than `weeklyDays`. The newest backup of all, and every name in `protect` (the one
 * just taken), are always kept, so a long pause in backups never leaves none. Backups of each kind
 * (SQLite, PostgreSQL) are planned apart: one engine's backups never make room for the other's.
 */
export function planRetention(
  backups: readonly BackupName[],
  now: Date,
  policy: RetentionPolicy,
  protect: ReadonlySet<string> = new Set(),
): RetentionPlan {
  const plan: RetentionPlan = { keep: [], remove: [] };
  for (const kind of new Set(backups.map((b) => b.kind))) {
    const own = backups
      .filter((b) => b.kind === kind)
      .sort((a, b) => b.time.getTime() - a.time.getTime() || b.name.localeCompare(a.name));
    const seenDays = new Set<string>();
    const seenWeeks = new Set<string>();
    own.forEach((backup, index) => {
      const age = now.getTime() - backup.time.getTime();
      const day = utcDay(backup.time);
      const week = isoWeek(backup.time);
      // Newest first: the first backup met in a day or week is that day's or week's newest.
      const newestOfDay = !seenDays.has(day);
      const newestOfWeek = !seenWeeks.has(week);
      seenDays.add(day);
      seenWeeks.add(week);
      const reason: KeepReason | null =
        index === 0
          ? 'newest'
          : protect.has(backup.name)
            ? 'protected'
            : age < policy.hourlyDays * DAY_MS
              ? 'hourly'
              : newestOfDay && age < policy.dailyDays * DAY_MS
                ? 'daily'
                : newestOfWeek && age < policy.weeklyDays * DAY_MS
                  ? 'weekly'
                  : null;
      if (reason) plan.keep.push({ backup, reason });
      else plan.remove.push(backup);
    });
  }
  return plan;
}
