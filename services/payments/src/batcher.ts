/**
 * Groups concurrent calls into batches: what callers submit while a batch is being worked on (or in
 * the same event-loop turn) goes into the next one, so a busy consumer pays one database round trip
 * — and one commit — per batch instead of per message, and an idle one waits for nobody (a lone item
 * is a batch of one, started on the next turn).
 *
 * Each caller's promise settles with its own item's result, only after the batch that contains it
 * finished. When a batch of several items fails, it is not retried as a whole: every item is run
 * again alone, in submission order, so one bad item fails only its own caller while the others
 * still succeed.
 */
export interface BatcherOptions<I, R> {
  /** Items per batch at most. */
  readonly maxSize: number;
  /** Batches worked on at once. Default 1. */
  readonly concurrency?: number;
  /** Works on a batch; returns one result per item, in the items' order. Throwing fails the batch. */
  readonly run: (items: readonly I[]) => Promise<readonly R[]>;
  /** Told when a batch of several items failed and its items are being run one by one. */
  readonly onBatchFailed?: (error: unknown, size: number) => void;
}

export interface Batcher<I, R> {
  submit(item: I): Promise<R>;
  /** Items submitted and not yet settled. */
  readonly pending: number;
}

interface Waiting<I, R> {
  readonly item: I;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

export function createBatcher<I, R>(options: BatcherOptions<I, R>): Batcher<I, R> {
  const concurrency = options.concurrency ?? 1;
  if (!(options.maxSize >= 1) || !(concurrency >= 1)) {
    throw new RangeError('maxSize and concurrency must be at least 1');
  }
  const queue: Waiting<I, R>[] = [];
  let running = 0;
  let isScheduled = false;
  let pending = 0;

  async function runOne(waiting: Waiting<I, R>): Promise<void> {
    try {
      const [result] = await options.run([waiting.item]);
      waiting.resolve(result as R);
    } catch (error) {
      waiting.reject(error);
    }
  }

  async function work(batch: readonly Waiting<I, R>[]): Promise<void> {
    let results: readonly R[];
    try {
      results = await options.run(batch.map((waiting) => waiting.item));
      if (results.length !== batch.length) {
        throw new Error(`a batch of ${batch.length} returned ${results.length} results`);
      }
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      options.onBatchFailed?.(error, batch.length);
      for (const waiting of batch) await runOne(waiting);
      return;
    }
    batch.forEach((waiting, index) => waiting.resolve(results[index] as R));
  }

  function drain(): void {
    isScheduled = false;
    while (running < concurrency && queue.length > 0) {
      const batch = queue.splice(0, options.maxSize);
      running += 1;
      void work(batch).finally(() => {
        running -= 1;
        pending -= batch.length;
        if (queue.length > 0) schedule();
      });
    }
  }

  function schedule(): void {
    if (isScheduled) return;
    isScheduled = true;
    // The next turn, so everything submitted in this one joins the batch.
    setImmediate(drain);
  }

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        pending += 1;
        if (running < concurrency) schedule();
      });
    },
    get pending() {
      return pending;
    },
  };
}
