/** One line of `brain db check` or `brain doctor`: a verdict, what was found, and what to do. */
export interface CheckLine {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skipped';
  message: string;
  fix?: string | undefined;
}

const MARKS: Record<CheckLine['status'], string> = { ok: '✓', warn: '⚠', fail: '✗', skipped: '–' };

/** `✓ name: message`, and for anything not ok ` — fix: …`, one line per check. */
export function formatCheckLines(lines: readonly CheckLine[]): string {
  const width = Math.max(0, ...lines.map((l) => l.name.length));
  return lines
    .map((l) => {
      const fix = l.status !== 'ok' && l.fix ? ` — fix: ${l.fix}` : '';
      return `${MARKS[l.status]} ${`${l.name}:`.padEnd(width + 1)} ${l.message}${fix}`;
    })
    .join('\n');
}

/** `1.2 MiB`: bytes in binary units. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
