import { CATEGORY_NAMES, type EvalFigures, type EvalReport } from '../../modules/eval/locomo-eval.js';

function row(name: string, f: EvalFigures, ks: number[]): string[] {
  return [
    name,
    String(f.questions),
    ...ks.map((k) => (f.turnRecall[k] ?? 0).toFixed(3)),
    ...ks.map((k) => (f.sessionRecall[k] ?? 0).toFixed(3)),
    f.mrr.toFixed(3),
  ];
}

/** Columns padded to their widest cell, the first left-aligned and the rest right-aligned. */
function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

/** `brain eval`'s table: turn and session recall at each k and MRR, overall and per category. */
export function formatEvalReport(report: EvalReport, label: string): string {
  const { ks } = report;
  const header = ['', 'questions', ...ks.map((k) => `turn@${k}`), ...ks.map((k) => `session@${k}`), 'MRR'];
  const rows = [header, row('overall (1-4)', report.overall, ks)];
  for (const [category, figures] of Object.entries(report.byCategory)) {
    rows.push(row(`${category} ${CATEGORY_NAMES[Number(category)] ?? ''}`.trim(), figures, ks));
  }
  rows.push(row('all (1-5)', report.all, ks));
  const modes = Object.entries(report.modes)
    .map(([mode, n]) => `${mode} ${n}`)
    .join(', ');
  const { recallMs } = report.latency;
  return [
    `${label}: ${report.conversations} conversations, ${report.turns} turns, ${report.questions} questions` +
      (report.skipped > 0 ? ` (${report.skipped} without a known evidence turn left out)` : ''),
    '',
    table(rows),
    '',
    `recall: ${modes}; latency p50 ${recallMs.p50.toFixed(2)} ms, p95 ${recallMs.p95.toFixed(2)} ms, p99 ${recallMs.p99.toFixed(2)} ms`,
    `remember: ${Math.round(report.latency.rememberPerSecond)} turns/s`,
  ].join('\n');
}

/** A one-line progress bar, redrawn in place on a terminal. */
export function progressBar(phase: string, done: number, total: number, width = 30): string {
  const share = total > 0 ? done / total : 1;
  const filled = Math.round(share * width);
  return `${phase.padEnd(8)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}
