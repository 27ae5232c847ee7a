/**
 * Lets relay workers sleep until there is work: `wait` ends at `wake()` (a notification arrived) or after
 * its interval (the polling fallback), or when the signal aborts. A `wake()` with nobody waiting is
 * remembered, so a notification that arrives mid-batch is not lost.
 */
export class Wakeup {
  #waiters = new Set<() => void>();
  #isPending = false;

  wake(): void {
    if (this.#waiters.size === 0) {
      this.#isPending = true;
      return;
    }
    for (const resolve of this.#waiters) resolve();
    this.#waiters.clear();
  }

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#isPending || signal?.aborted === true) {
      this.#isPending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }
}
