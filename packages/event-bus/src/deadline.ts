import { AppError, isAppError } from '@bazaar/errors';

/**
 * Settles like `work`, or rejects with `AppError('UPSTREAM_TIMEOUT')` once `timeoutMs` passed first.
 * A paused RabbitMQ (or database) accepts TCP and then never answers, so amqplib would wait forever:
 * every broker call goes through here. The late outcome of `work` is ignored (a rejection is handled,
 * so it never becomes an unhandled one).
 *
 * @param operation - what was waited for, e.g. `RabbitMQ publish confirm`; it names the error
 */
export function withDeadline<T>(
  work: Promise<T>,
  timeoutMs: number,
  operation: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(deadlineError(operation, timeoutMs));
    }, timeoutMs);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** The error of an operation that did not finish within its deadline. */
export function deadlineError(operation: string, timeoutMs: number): AppError {
  return new AppError('UPSTREAM_TIMEOUT', `${operation} did not finish within ${timeoutMs} ms`, {
    details: { operation, timeoutMs },
  });
}

/** Whether an error is a passed deadline (of this package or another Bazaar client). */
export function isDeadlineError(error: unknown): boolean {
  return isAppError(error, 'UPSTREAM_TIMEOUT');
}

/** A promise that resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
