import type pino from 'pino';

/** How long a graceful shutdown may take before the process gives up and exits. */
export const DRAIN_TIMEOUT_MS = 10_000;

/**
 * Resolves with the signal's name on the first SIGINT or SIGTERM (or when `also` resolves). A second
 * signal while draining exits at once with code 130: the operator asked twice.
 */
export function waitForShutdown(logger: pino.Logger, also?: Promise<string>): Promise<string> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal while draining: exiting now');
        process.exit(130);
      }
      stopping = true;
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    also?.then((reason) => {
      if (!stopping) {
        stopping = true;
        resolve(reason);
      }
    });
  });
}

/**
 * Runs the drain steps in order; if they take longer than DRAIN_TIMEOUT_MS the process exits with
 * code 1 so that a stuck connection cannot hold a deploy forever. Committed writes are already durable
 * (WAL), so the timeout loses no acknowledged write.
 */
export async function drain(logger: pino.Logger, steps: (() => Promise<void>)[]): Promise<void> {
  const timer = setTimeout(() => {
    logger.error({ timeoutMs: DRAIN_TIMEOUT_MS }, 'shutdown did not finish in time: exiting');
    process.exit(1);
  }, DRAIN_TIMEOUT_MS);
  timer.unref();
  try {
    for (const step of steps) await step();
  } finally {
    clearTimeout(timer);
  }
}
