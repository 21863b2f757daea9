/**
 * Figures for benchmarks: percentiles and summaries of latency samples, peak and current RSS from
 * /proc/self/status, targets with PASS/MISS, and the plain-text table every bench prints.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

/** The p-th percentile (0..100) of ascending `sorted` samples, by the nearest-rank method. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** The median of a few numbers (e.g. the figures of three runs). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Latency samples in milliseconds, summarised. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Operations per second if the calls ran back to back: count / sum of latencies. */
  opsPerSecond: number;
}

export function summarize(samplesMs: readonly number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const total = sorted.reduce((sum, v) => sum + v, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    mean: sorted.length > 0 ? total / sorted.length : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    opsPerSecond: total > 0 ? (sorted.length * 1000) / total : Number.NaN,
  };
}

/** Runs `fn` once per item and records each call's wall time in milliseconds. */
export async function timeEach<T>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<unknown>,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < items.length; i++) {
    const start = performance.now();
    await fn(items[i] as T, i);
    samples.push(performance.now() - start);
  }
  return samples;
}

/** Wall time of `fn` in milliseconds, with its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/** Resident set size in MB: current (VmRSS) and the process's peak so far (VmHWM). */
export interface RssFigures {
  currentMb: number;
  peakMb: number;
}

/** Parses VmRSS and VmHWM out of a /proc/<pid>/status text; null when they are missing. */
export function parseProcStatus(status: string): RssFigures | null {
  const kb = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return match ? Number(match[1]) : null;
  };
  const current = kb('VmRSS');
  const peak = kb('VmHWM');
  if (current === null || peak === null) return null;
  return { currentMb: current / 1024, peakMb: peak / 1024 };
}

/** This process's RSS; off Linux (no /proc) the peak falls back to the current RSS. */
export function readRss(): RssFigures {
  try {
    const figures = parseProcStatus(fs.readFileSync('/proc/self/status', 'utf8'));
    if (figures) return figures;
  } catch {
    // Not Linux: no /proc. The current RSS is the best figure Node offers.
  }
  const current = process.memoryUsage().rss / (1024 * 1024);
  return { currentMb: current, peakMb: current };
}

/**
 * Resets this process's peak RSS (VmHWM) to its current RSS, so that a bench run after another in the
 * same process reports its own peak. Linux only (/proc/self/clear_refs); false where it is not possible.
 */
export function resetPeakRss(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** A bound a figure must meet: at most (`<=`) or at least (`>=`) `value`. */
export interface Target {
  op: '<=' | '>=';
  value: number;
}

/** One line of a bench's table. */
export interface Figure {
  /** What was measured, e.g. "recall p95". */
  label: string;
  value: number;
  unit: string;
  target?: Target;
  /** Set from the target by {@link figure}; absent when there is no target. */
  pass?: boolean;
}

export function figure(label: string, value: number, unit: string, target?: Target): Figure {
  if (!target) return { label, value, unit };
  const pass = target.op === '<=' ? value <= target.value : value >= target.value;
  return { label, value, unit, target, pass };
}

/** Figures for the p50/p95/p99 and throughput of a latency summary, with optional targets. */
export function latencyFigures(
  name: string,
  summary: LatencySummary,
  targets: { p50?: number; p95?: number; p99?: number; opsPerSecond?: number } = {},
): Figure[] {
  const at = (v: number | undefined, op: Target['op']): Target | undefined =>
    v === undefined ? undefined : { op, value: v };
  return [
    figure(`${name} p50`, summary.p50, 'ms', at(targets.p50, '<=')),
    figure(`${name} p95`, summary.p95, 'ms', at(targets.p95, '<=')),
    figure(`${name} p99`, summary.p99, 'ms', at(targets.p99, '<=')),
    figure(`${name} throughput`, summary.opsPerSecond, 'ops/s', at(targets.opsPerSecond, '>=')),
  ];
}

/** RSS figures of this process, labelled. */
export function rssFigures(label: string, rss: RssFigures, peakTargetMb?: number): Figure[] {
  return [
    figure(
      `${label} RSS peak (VmHWM)`,
      rss.peakMb,
      'MB',
      peakTargetMb === undefined ? undefined : { op: '<=', value: peakTargetMb },
    ),
    figure(`${label} RSS current`, rss.currentMb, 'MB'),
  ];
}

/** A number with as many decimals as its size calls for. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** A plain-text table: label, value, unit, target and PASS/MISS (blank when there is no target). */
export function formatTable(title: string, figures: readonly Figure[]): string {
  const rows = figures.map((f) => [
    f.label,
    formatNumber(f.value),
    f.unit,
    f.target ? `${f.target.op} ${formatNumber(f.target.value)}` : '',
    f.pass === undefined ? '' : f.pass ? 'PASS' : 'MISS',
  ]);
  const header = ['figure', 'value', 'unit', 'target', 'result'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => pad(c, widths[i] ?? 0, i === 1 || i === 3))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [`== ${title}`, line(header), rule, ...rows.map(line)].join('\n');
}

/** A plain-text table of arbitrary string cells (for side-by-side comparisons). */
export function formatGrid(
  title: string,
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => pad(c, widths[i] ?? 0, i > 0))
      .join('  ')
      .trimEnd();
  return [`== ${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join(
    '\n',
  );
}
