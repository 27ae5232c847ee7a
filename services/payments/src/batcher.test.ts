import { describe, expect, it } from 'vitest';
import { createBatcher } from './batcher';

/** A batch runner that records the batches it was given; items named "bad" fail any batch. */
function recordingRunner() {
  const batches: string[][] = [];
  return {
    batches,
    run: (items: readonly string[]) => {
      batches.push([...items]);
      if (items.includes('bad')) return Promise.reject(new Error('bad row'));
      return Promise.resolve(items.map((item) => item.toUpperCase()));
    },
  };
}

describe('createBatcher', () => {
  it('puts items submitted together into one batch and gives each caller its own result', async () => {
    const runner = recordingRunner();
    const batcher = createBatcher({ maxSize: 10, run: runner.run });
    const results = await Promise.all(['a', 'b', 'c'].map((item) => batcher.submit(item)));
    expect(results).toEqual(['A', 'B', 'C']);
    expect(runner.batches).toEqual([['a', 'b', 'c']]);
    expect(batcher.pending).toBe(0);
  });

  it('never puts more than maxSize items into a batch, and keeps their order', async () => {
    const runner = recordingRunner();
    const batcher = createBatcher({ maxSize: 2, run: runner.run });
    const items = ['a', 'b', 'c', 'd', 'e'];
    await Promise.all(items.map((item) => batcher.submit(item)));
    expect(runner.batches.every((batch) => batch.length <= 2)).toBe(true);
    expect(runner.batches.flat()).toEqual(items);
  });

  it('collects what arrives while a batch is running into the next one', async () => {
    const batches: string[][] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const batcher = createBatcher<string, string>({
      maxSize: 10,
      run: async (items) => {
        batches.push([...items]);
        if (batches.length === 1) await gate;
        return items;
      },
    });
    const first = batcher.submit('a');
    await new Promise((resolve) => setImmediate(resolve));
    const later = ['b', 'c', 'd'].map((item) => batcher.submit(item));
    release();
    await Promise.all([first, ...later]);
    expect(batches).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('runs the items of a failed batch one by one: only the bad item fails', async () => {
    const runner = recordingRunner();
    const failures: number[] = [];
    const batcher = createBatcher({
      maxSize: 10,
      run: runner.run,
      onBatchFailed: (_error, size) => failures.push(size),
    });
    const settled = await Promise.allSettled(['a', 'bad', 'c'].map((item) => batcher.submit(item)));
    expect(settled.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(settled[0]).toMatchObject({ value: 'A' });
    expect(settled[1]).toMatchObject({ reason: new Error('bad row') });
    expect(settled[2]).toMatchObject({ value: 'C' });
    expect(runner.batches).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
    expect(failures).toEqual([3]);
  });

  it('fails a batch whose runner returns the wrong number of results', async () => {
    const batcher = createBatcher<string, string>({
      maxSize: 10,
      run: () => Promise.resolve([]),
    });
    await expect(batcher.submit('a')).rejects.toThrow('returned 0 results');
  });

  it('keeps at most `concurrency` batches running', async () => {
    let running = 0;
    let most = 0;
    const batcher = createBatcher<number, number>({
      maxSize: 1,
      concurrency: 2,
      run: async (items) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setImmediate(resolve));
        running -= 1;
        return items;
      },
    });
    await Promise.all(Array.from({ length: 6 }, (_, n) => batcher.submit(n)));
    expect(most).toBe(2);
  });

  it('refuses a size or concurrency below 1', () => {
    expect(() => createBatcher({ maxSize: 0, run: () => Promise.resolve([]) })).toThrow(RangeError);
    expect(() =>
      createBatcher({ maxSize: 1, concurrency: 0, run: () => Promise.resolve([]) }),
    ).toThrow(RangeError);
  });
});
