import type { JobsRuntime } from '../surfaces/cli/jobs-commands.js';
import type { WithBrain } from './run-keys.js';

/**
 * `brain jobs` and `brain dead-letter` on the configured store: the history, leases and letters are in
 * the database, so this shows every process's and replica's runs; a job run from here takes the same
 * lease a server's scheduler would.
 */
export function jobsRuntime(withBrain: WithBrain): JobsRuntime {
  return {
    jobs: (global) =>
      withBrain(global, async (brain) => {
        const store = brain.storage.stores().jobs;
        const [history, leases] = await Promise.all([
          store.history(),
          store.leases(brain.clock.now().toISOString()),
        ]);
        return brain.scheduler.status().map((job) => {
          const h = history.find((x) => x.job === job.name);
          return {
            name: job.name,
            cron: job.cron,
            description: job.description,
            nextRun: job.nextRun,
            last: h?.last ?? null,
            lastSuccessAt: h?.lastSuccess?.finishedAt ?? null,
            runningOn: leases.find((l) => l.job === job.name)?.holder ?? null,
          };
        });
      }),
    runJob: (global, name) => withBrain(global, (brain) => brain.scheduler.runNow(name)),
    jobHistory: (global, { job, limit }) =>
      withBrain(global, (brain) => brain.storage.stores().jobs.recentRuns(limit, job)),
    deadLetters: (global, { all, limit }) =>
      withBrain(global, (brain) => brain.storage.stores().jobs.deadLetters({ pending: !all, limit })),
    retryDeadLetter: (global, id) => withBrain(global, (brain) => brain.scheduler.retryDeadLetter(id)),
  };
}
