import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBatcher } from './event-batcher';

describe('createBatcher', () => {
  it('writes full batches at once and the rest after the wait; each add resolves after its write', async () => {
    const writes: number[][] = [];
    const batcher = createBatcher<number, void>({
      maxItems: 3,
      maxWaitMs: 20,
      write: (items) => {
        writes.push([...items]);
        return Promise.resolve();
      },
    });
    const done = [1, 2, 3, 4].map((n) => batcher.add(n));
    await Promise.all(done.slice(0, 3));
    expect(writes).toEqual([[1, 2, 3]]);
    await done[3];
    expect(writes).toEqual([[1, 2, 3], [4]]);
  });

  it('rejects every waiter of a failed batch and keeps going with the next', async () => {
    let calls = 0;
    const batcher = createBatcher<number, void>({
      maxItems: 2,
      maxWaitMs: 5,
      write: () => {
        calls += 1;
        return calls === 1 ? Promise.reject(new Error('disk full')) : Promise.resolve();
      },
    });
    const first = [batcher.add(1), batcher.add(2)];
    const results = await Promise.allSettled(first);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(batcher.add(3)).resolves.toBeUndefined();
  });

  it('never writes two batches at once, never more than maxItems, every item exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer(), { maxLength: 200 }),
        fc.integer({ min: 1, max: 17 }),
        async (items, maxItems) => {
          let active = 0;
          const written: number[] = [];
          const batcher = createBatcher<number, void>({
            maxItems,
            maxWaitMs: 1,
            write: async (batch) => {
              active += 1;
              expect(active).toBe(1);
              expect(batch.length).toBeLessThanOrEqual(maxItems);
              await new Promise((resolve) => setImmediate(resolve));
              written.push(...batch);
              active -= 1;
            },
          });
          await Promise.all(items.map((item) => batcher.add(item)));
          await batcher.flush();
          expect(written).toEqual(items);
          expect(batcher.pending).toBe(0);
        },
      ),
      { numRuns: 50 },
    );
  });
});
