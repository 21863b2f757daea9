import type { Command } from 'commander';
import { invalidInput } from '../../core/errors.js';
import type { DeadLetter, JobRun } from '../../modules/jobs/job-store.js';
import type { CliIo, GlobalOptions } from './cli-program.js';

/** One job as `brain jobs` shows it (the scheduler's definition, history and lease). */
export interface JobView {
  name: string;
  cron: string;
  description: string;
  /** Only a running server knows its timers: here, the next time the cron expression names. */
  nextRun: string | null;
  last: JobRun | null;
  lastSuccessAt: string | null;
  /** Who holds the job's lease now (a process running it, on any replica), or null. */
  runningOn: string | null;
}

/** What the jobs and dead-letter commands need from the composition root (src/app/run-jobs.ts). */
export interface JobsRuntime {
  jobs(global: GlobalOptions): Promise<JobView[]>;
  /** Runs a job now in this process, under its lease (refused while another process runs it). */
  runJob(global: GlobalOptions, name: string): Promise<JobRun>;
  jobHistory(global: GlobalOptions, options: { job?: string; limit: number }): Promise<JobRun[]>;
  deadLetters(global: GlobalOptions, options: { all: boolean; limit: number }): Promise<DeadLetter[]>;
  retryDeadLetter(global: GlobalOptions, id: string): Promise<JobRun>;
}

export interface JobsKit {
  runtime: JobsRuntime;
  globals(): GlobalOptions;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
  io: CliIo;
  state: { code: number };
}

export const JOBS_LIMIT = { default: 20, max: 1000 } as const;

function limitOf(value: string | undefined): number {
  if (value === undefined) return JOBS_LIMIT.default;
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(Number.isSafeInteger(n) && n >= 1 && n <= JOBS_LIMIT.max))
    throw invalidInput(
      'limit',
      `must be a whole number from 1 to ${JOBS_LIMIT.max}, got ${JSON.stringify(value)}`,
    );
  return n;
}

/** `2026-12-03T09:00:00.000Z` → `2026-12-03 09:00:00Z`. */
function when(iso: string | null | undefined): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z` : '-';
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatRun(run: JobRun): string {
  const tries = run.attempts > 1 ? `, ${run.attempts} tries` : '';
  return `${run.job}: ${run.outcome} at ${when(run.finishedAt)} in ${seconds(run.durationMs)}${tries} (${run.trigger}, ${run.holder})${run.message ? `\n  ${run.message}` : ''}`;
}

export function formatJobs(jobs: JobView[]): string {
  if (jobs.length === 0) return 'no jobs';
  return jobs
    .map((j) => {
      const lines = [`${j.name}  [${j.cron}]  ${j.description}`];
      lines.push(`  next: ${j.cron === 'off' ? 'off' : when(j.nextRun)}`);
      lines.push(
        j.last
          ? `  last: ${j.last.outcome} at ${when(j.last.finishedAt)} in ${seconds(j.last.durationMs)}${j.last.message ? ` (${j.last.message})` : ''}`
          : '  last: never run',
      );
      if (j.last && j.last.outcome !== 'succeeded') lines.push(`  last success: ${when(j.lastSuccessAt)}`);
      if (j.runningOn) lines.push(`  running now on ${j.runningOn}`);
      return lines.join('\n');
    })
    .join('\n');
}

export function formatDeadLetters(letters: DeadLetter[]): string {
  if (letters.length === 0) return 'no dead letters';
  return letters
    .map((d) => {
      const retried = d.retriedAt ? `; retried ${when(d.retriedAt)}: ${d.retryOutcome ?? 'running'}` : '';
      return `${d.id}  ${d.job}  failed ${when(d.failedAt)} after ${d.attempts} tries${retried}\n  ${d.error}`;
    })
    .join('\n');
}

/** `brain jobs [run NAME | history]` and `brain dead-letter list|retry`. */
export function registerJobsCommands(program: Command, kit: JobsKit): void {
  const { runtime, globals, print, state } = kit;
  const jobs = program
    .command('jobs')
    .description('the scheduled jobs: schedule, next and last run, who runs one now')
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const list = await runtime.jobs(globals());
      print(flags.json, list, () => formatJobs(list));
    });

  jobs
    .command('run')
    .description('run a job now in this process, under its lease (refused while it runs elsewhere)')
    .argument('<name>', 'the job, as `brain jobs` lists it')
    .option('--json', 'print JSON')
    .action(async (name: string, flags) => {
      const run = await runtime.runJob(globals(), name);
      // `brain jobs run x --json`: commander gives `--json` to `jobs`, which has one too.
      print(flags.json || jobs.opts().json, run, () => formatRun(run));
      if (run.outcome === 'failed') state.code = 1;
    });

  jobs
    .command('history')
    .description('the recorded runs, newest first')
    .argument('[name]', 'only this job')
    .option('--limit <n>', `how many, 1..${JOBS_LIMIT.max} (default ${JOBS_LIMIT.default})`)
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, flags) => {
      const runs = await runtime.jobHistory(globals(), {
        ...(name !== undefined ? { job: name } : {}),
        limit: limitOf(flags.limit),
      });
      print(flags.json || jobs.opts().json, runs, () =>
        runs.length === 0 ? 'no runs recorded' : runs.map(formatRun).join('\n'),
      );
    });

  const dead = program
    .command('dead-letter')
    .description('job runs that failed every retry: list them, retry one');
  dead
    .command('list')
    .description('the dead letters not yet retried, newest first')
    .option('--all', 'include the ones already retried, with how the retry ended')
    .option('--limit <n>', `how many, 1..${JOBS_LIMIT.max} (default ${JOBS_LIMIT.default})`)
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const letters = await runtime.deadLetters(globals(), {
        all: Boolean(flags.all),
        limit: limitOf(flags.limit),
      });
      print(flags.json, letters, () => formatDeadLetters(letters));
    });
  dead
    .command('retry')
    .description("run a dead letter's job again now; a letter is retried once")
    .argument('<id>', 'the letter (dl_…), as `brain dead-letter list` shows it')
    .option('--json', 'print JSON')
    .action(async (id: string, flags) => {
      const run = await runtime.retryDeadLetter(globals(), id);
      print(flags.json, run, () => formatRun(run));
      if (run.outcome === 'failed') state.code = 1;
    });
}
