import { AsyncLocalStorage } from 'node:async_hooks';

/** The field every log line of a request carries its id in (Fastify's own lines and the services'). */
export const REQUEST_ID_LOG_FIELD = 'request_id';

/** The id of the request being handled, followed through every await and callback it starts. */
const requests = new AsyncLocalStorage<string>();

/**
 * Runs `fn`, and everything it starts (awaits, timers, callbacks), as part of the request `requestId`:
 * the process logger then stamps that id on every line logged meanwhile (app-logger.ts).
 */
export function runInRequest<T>(requestId: string, fn: () => T): T {
  return requests.run(requestId, fn);
}

/** The id of the request whose work is running now, or undefined outside a request. */
export function currentRequestId(): string | undefined {
  return requests.getStore();
}
