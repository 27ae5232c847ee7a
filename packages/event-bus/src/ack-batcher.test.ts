import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AckBatcher } from './ack-batcher';

class RecordingChannel {
  readonly acks: { tag: number; multiple: boolean }[] = [];
  ack(message: { fields: { deliveryTag: number } }, allUpTo = false): void {
    this.acks.push({ tag: message.fields.deliveryTag, multiple: allUpTo });
  }
}

/** The tags a sequence of multiple-acks covers, in a channel that delivered 1…n. */
function coveredTags(acks: readonly { tag: number; multiple: boolean }[]): number[] {
  const covered: number[] = [];
  let last = 0;
  for (const { tag } of acks) {
    for (let next = last + 1; next <= tag; next += 1) covered.push(next);
    last = Math.max(last, tag);
  }
  return covered;
}

describe('AckBatcher', () => {
  it('acknowledges a settled prefix with one multiple-ack per flush', () => {
    const channel = new RecordingChannel();
    const batcher = new AckBatcher(channel);
    for (const tag of [1, 2, 3, 4]) batcher.delivered(tag);
    batcher.ack(2);
    batcher.ack(1);
    batcher.flush();
    expect(channel.acks).toEqual([{ tag: 2, multiple: true }]);
    batcher.ack(4);
    batcher.flush();
    // 3 is still running: 4 must wait for it.
    expect(channel.acks).toHaveLength(1);
    batcher.ack(3);
    batcher.flush();
    expect(channel.acks).toEqual([
      { tag: 2, multiple: true },
      { tag: 4, multiple: true },
    ]);
  });

  it('flushes by itself on the next turn of the event loop', async () => {
    const channel = new RecordingChannel();
    const batcher = new AckBatcher(channel);
    batcher.delivered(1);
    batcher.ack(1);
    expect(channel.acks).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(channel.acks).toEqual([{ tag: 1, multiple: true }]);
  });

  it('never names a nacked delivery in an ack, and lets later ones through', () => {
    const channel = new RecordingChannel();
    const batcher = new AckBatcher(channel);
    for (const tag of [1, 2, 3]) batcher.delivered(tag);
    batcher.ack(1);
    batcher.settledWithoutAck(2);
    batcher.ack(3);
    batcher.flush();
    expect(channel.acks).toEqual([
      { tag: 1, multiple: true },
      { tag: 3, multiple: true },
    ]);
  });

  it('sends nothing after close', () => {
    const channel = new RecordingChannel();
    const batcher = new AckBatcher(channel);
    batcher.delivered(1);
    batcher.close();
    batcher.ack(1);
    batcher.flush();
    expect(channel.acks).toEqual([]);
  });

  it('for any completion order, covers exactly the finished prefix and never an unfinished delivery', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 60 })
          .chain((n) =>
            fc.tuple(fc.constant(n), fc.shuffledSubarray([...Array(n).keys()].map((i) => i + 1))),
          ),
        fc.array(fc.boolean(), { maxLength: 60 }),
        ([n, finished], flushes) => {
          const channel = new RecordingChannel();
          const batcher = new AckBatcher(channel);
          for (let tag = 1; tag <= n; tag += 1) batcher.delivered(tag);
          finished.forEach((tag, index) => {
            batcher.ack(tag);
            if (flushes[index] === true) batcher.flush();
          });
          batcher.flush();
          const done = new Set(finished);
          let prefix = 0;
          while (done.has(prefix + 1)) prefix += 1;
          expect(coveredTags(channel.acks)).toEqual([...Array(prefix).keys()].map((i) => i + 1));
          expect(channel.acks.every((ack) => ack.multiple)).toBe(true);
        },
      ),
    );
  });
});
