import { describe, expect, it } from 'vitest';
import {
  type BackupName,
  backupName,
  isoWeek,
  nextBackupName,
  parseBackupName,
  partialName,
  partialOwner,
} from './backup-names.js';
import { planRetention } from './retention.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2026-06-10T12:30:00Z');
const POLICY = { hourlyDays: 7, dailyDays: 30, weeklyDays: 365 };

/** A backup every `stepMs` back from `from` for `spanMs`, newest first. */
function every(stepMs: number, spanMs: number, from = NOW): BackupName[] {
  const out: BackupName[] = [];
  for (let t = from.getTime(); t > from.getTime() - spanMs; t -= stepMs) {
    const time = new Date(Math.floor(t / 1000) * 1000);
    out.push({ name: backupName('db', time), kind: 'db', time });
  }
  return out;
}

describe('backup names', () => {
  it('names a backup by its UTC second and reads the time back', () => {
    const time = new Date('2026-01-31T23:04:05.678Z');
    expect(backupName('db', time)).toBe('brain_20260131_230405.db.gz');
    expect(backupName('pgdump', time, 2)).toBe('brain_20260131_230405_2.pgdump.gz');
    expect(parseBackupName('brain_20260131_230405.db.gz')).toEqual({
      name: 'brain_20260131_230405.db.gz',
      kind: 'db',
      time: new Date('2026-01-31T23:04:05Z'),
    });
    expect(parseBackupName('brain_20260131_230405_2.pgdump.gz')?.kind).toBe('pgdump');
  });

  it('takes nothing else for a backup: partials, checksums, impossible dates, other files', () => {
    for (const name of [
      'brain_20260131_230405.db.gz.123.partial',
      'brain_20260131_230405.db.gz.sha256',
      'brain_20261331_230405.db.gz',
      'brain_20260230_120000.db.gz',
      'brain_20260131_230405.db',
      'brain_old_20260131_230405.db',
      'notes.txt',
    ])
      expect(parseBackupName(name), name).toBeNull();
  });

  it('finds a free name when one of the same second is taken, and names partials by their writer', () => {
    const time = new Date('2026-01-31T23:04:05Z');
    const taken = new Set(['brain_20260131_230405.db.gz', 'brain_20260131_230405_2.db.gz.sha256']);
    expect(nextBackupName('db', time, taken)).toBe('brain_20260131_230405_3.db.gz');
    expect(nextBackupName('pgdump', time, taken)).toBe('brain_20260131_230405.pgdump.gz');
    expect(partialName('/b/x.db.gz', 42)).toBe('/b/x.db.gz.42.partial');
    expect(partialOwner('x.db.gz.42.partial')).toBe(42);
    expect(partialOwner('x.db.raw.42.partial-journal')).toBe(42);
    expect(partialOwner('x.db.gz')).toBeNull();
  });

  it('computes ISO weeks across year ends', () => {
    expect(isoWeek(new Date('2026-01-01T00:00:00Z'))).toBe('2026-W01'); // a Thursday
    expect(isoWeek(new Date('2027-01-01T00:00:00Z'))).toBe('2026-W53'); // a Friday: the last week of 2026
    expect(isoWeek(new Date('2024-12-30T00:00:00Z'))).toBe('2025-W01'); // a Monday
    expect(isoWeek(new Date('2026-06-07T23:59:59Z'))).toBe('2026-W23'); // a Sunday ends its week
    expect(isoWeek(new Date('2026-06-08T00:00:00Z'))).toBe('2026-W24');
  });
});

describe('retention', () => {
  it('keeps every hourly backup for 7 days, then the newest of each day to 30 days, then of each week to a year', () => {
    const backups = every(HOUR, 400 * DAY);
    const plan = planRetention(backups, NOW, POLICY);
    const kept = plan.keep.map((k) => k.backup);
    expect(kept.length + plan.remove.length).toBe(backups.length);
    // Hourly: all of the last 7 days.
    const hourly = backups.filter((b) => NOW.getTime() - b.time.getTime() < 7 * DAY);
    for (const b of hourly) expect(kept).toContain(b);
    // Daily: exactly one per day between 7 and 30 days, the newest of that day (23:30 UTC).
    const daily = plan.keep.filter((k) => k.reason === 'daily').map((k) => k.backup);
    expect(new Set(daily.map((b) => b.time.toISOString().slice(0, 10))).size).toBe(daily.length);
    for (const b of daily) expect(b.time.toISOString().slice(11, 19)).toBe('23:30:00');
    expect(daily.length).toBeGreaterThanOrEqual(22);
    expect(daily.length).toBeLessThanOrEqual(24);
    // Weekly: one per ISO week, the newest of it (Sunday 23:30), none older than a year.
    const weekly = plan.keep.filter((k) => k.reason === 'weekly').map((k) => k.backup);
    expect(new Set(weekly.map((b) => isoWeek(b.time))).size).toBe(weekly.length);
    for (const b of weekly) {
      expect(b.time.getUTCDay()).toBe(0);
      expect(b.time.toISOString().slice(11, 19)).toBe('23:30:00');
      expect(NOW.getTime() - b.time.getTime()).toBeLessThan(365 * DAY);
    }
    expect(weekly.length).toBeGreaterThanOrEqual(47);
    // Nothing older than a year survives.
    for (const b of kept) expect(NOW.getTime() - b.time.getTime()).toBeLessThan(365 * DAY);
  });

  it('keeps the newest of a day even when it is not the last hour, and removes the day’s others', () => {
    const day = new Date('2026-05-20T00:00:00Z');
    const backups = [3, 9, 15].map((h) => {
      const time = new Date(day.getTime() + h * HOUR);
      return { name: backupName('db', time), kind: 'db' as const, time };
    });
    const newer = { name: backupName('db', NOW), kind: 'db' as const, time: NOW };
    const plan = planRetention([...backups, newer], NOW, POLICY);
    expect(plan.keep.map((k) => k.backup.name).sort()).toEqual(
      [newer.name, 'brain_20260520_150000.db.gz'].sort(),
    );
    expect(plan.remove.map((b) => b.name).sort()).toEqual([
      'brain_20260520_030000.db.gz',
      'brain_20260520_090000.db.gz',
    ]);
  });

  it('never removes the newest backup nor a protected one, even when every tier is off', () => {
    const backups = every(DAY, 10 * DAY, new Date(NOW.getTime() - 500 * DAY));
    const off = { hourlyDays: 0, dailyDays: 0, weeklyDays: 0 };
    const protectedName = (backups[4] as BackupName).name;
    const plan = planRetention(backups, NOW, off, new Set([protectedName]));
    expect(plan.keep).toEqual([
      { backup: backups[0], reason: 'newest' },
      { backup: backups[4], reason: 'protected' },
    ]);
    expect(plan.remove).toHaveLength(8);
    expect(planRetention([], NOW, off)).toEqual({ keep: [], remove: [] });
  });

  it('plans each engine’s backups apart: PostgreSQL dumps never make room for SQLite files', () => {
    const old = new Date(NOW.getTime() - 400 * DAY);
    const db = { name: backupName('db', old), kind: 'db' as const, time: old };
    const pg = { name: backupName('pgdump', NOW), kind: 'pgdump' as const, time: NOW };
    const plan = planRetention([db, pg], NOW, POLICY);
    expect(plan.remove).toEqual([]);
    expect(plan.keep.map((k) => k.reason)).toEqual(['newest', 'newest']);
  });
});
