// Gathers deliveries into batches so that the warehouse gets one transaction per few thousand events:
// `add` resolves only once the batch holding the event is durable, so each delivery is acknowledged
// after its commit and never before; a failed write rejects every waiter (→ retry, then DLQ).

export interface BatcherOptions<T, R> {
  readonly maxItems: number;
  readonly maxWaitMs: number;
  readonly write: (items: readonly T[]) => Promise<R>;
  /** After each successful write (metrics, logs). */
  readonly onWritten?: (result: R, items: number, durationMs: number) => void;
}

interface Waiter<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export interface Batcher<T> {
  add(item: T): Promise<void>;
  /** Writes what is pending now and waits for every write in progress. */
  flush(): Promise<void>;
  readonly pending: number;
}

export function createBatcher<T, R>(options: BatcherOptions<T, R>): Batcher<T> {
  const { maxItems, maxWaitMs, write, onWritten } = options;
  const pending: Waiter<T>[] = [];
  let timer: NodeJS.Timeout | undefined;
  // One write at a time: items arriving meanwhile form the next batch.
  let writing: Promise<void> = Promise.resolve();

  function takeBatch(): void {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const batch = pending.splice(0, maxItems);
    writing = writing.then(async () => {
      const started = performance.now();
      try {
        const result = await write(batch.map((waiter) => waiter.item));
        for (const waiter of batch) waiter.resolve();
        onWritten?.(result, batch.length, performance.now() - started);
      } catch (error) {
        for (const waiter of batch) waiter.reject(error);
      }
    });
    if (pending.length >= maxItems) takeBatch();
    else if (pending.length > 0) timer = setTimeout(takeBatch, maxWaitMs);
  }

  return {
    add(item: T): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        pending.push({ item, resolve, reject });
        if (pending.length >= maxItems) takeBatch();
        else timer ??= setTimeout(takeBatch, maxWaitMs);
      });
    },
    async flush(): Promise<void> {
      takeBatch();
      while (pending.length > 0) takeBatch();
      await writing;
    },
    get pending() {
      return pending.length;
    },
  };
}
