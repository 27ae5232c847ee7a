import { isAppError } from '@bazaar/errors';
import { describe, expect, it } from 'vitest';
import { isDeadlineError, sleep, withDeadline } from './deadline';

describe('withDeadline', () => {
  it('resolves with the value of work that finishes in time', async () => {
    await expect(withDeadline(Promise.resolve(42), 1000, 'x')).resolves.toBe(42);
  });

  it('rejects with UPSTREAM_TIMEOUT naming the operation when work never settles', async () => {
    const never = new Promise<never>(() => undefined);
    const error: unknown = await withDeadline(never, 10, 'RabbitMQ publish confirm').catch(
      (caught: unknown) => caught,
    );
    expect(isAppError(error, 'UPSTREAM_TIMEOUT')).toBe(true);
    expect(isDeadlineError(error)).toBe(true);
    expect((error as Error).message).toBe('RabbitMQ publish confirm did not finish within 10 ms');
  });

  it("passes on work's own rejection", async () => {
    const failing = Promise.reject(new Error('channel closed'));
    await expect(withDeadline(failing, 1000, 'x')).rejects.toThrow('channel closed');
  });

  it('wraps a non-Error rejection', async () => {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    await expect(withDeadline(Promise.reject('nope'), 1000, 'x')).rejects.toThrow('nope');
  });
});

describe('sleep', () => {
  it('ends early when its signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const slept = sleep(10_000, controller.signal);
    controller.abort();
    await slept;
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('returns at once for an already aborted signal', async () => {
    await expect(sleep(10_000, AbortSignal.abort())).resolves.toBeUndefined();
  });
});
