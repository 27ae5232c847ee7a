import { describe, expect, it } from 'vitest';
import { formatDelay, groupQueues, queueArguments } from './topology';

describe('groupQueues', () => {
  it('names the work queue after the group, one delay queue per tier, and the DLQ', () => {
    expect(groupQueues('payments.order-placed', [1000, 5000, 30_000])).toEqual({
      work: 'payments.order-placed',
      retries: [
        { name: 'payments.order-placed.retry.1s', delayMs: 1000 },
        { name: 'payments.order-placed.retry.5s', delayMs: 5000 },
        { name: 'payments.order-placed.retry.30s', delayMs: 30_000 },
      ],
      deadLetter: 'payments.order-placed.dlq',
    });
  });

  it('declares a repeated delay once', () => {
    expect(groupQueues('a.b', [200, 200, 1000]).retries.map((r) => r.name)).toEqual([
      'a.b.retry.200ms',
      'a.b.retry.1s',
    ]);
  });

  it.each(['', 'Payments', 'payments..x', 'a b', 'a.#', 'a.*', '.a'])('refuses "%s"', (group) => {
    expect(() => groupQueues(group, [])).toThrow(TypeError);
  });
});

describe('formatDelay', () => {
  it.each([
    [1000, '1s'],
    [30_000, '30s'],
    [250, '250ms'],
    [1500, '1500ms'],
  ])('%d → %s', (ms, text) => {
    expect(formatDelay(ms)).toBe(text);
  });
});

describe('queueArguments', () => {
  const queues = groupQueues('notifications.orders', [1000, 5000]);
  const args = queueArguments(queues, 20);

  it('makes every queue a quorum queue', () => {
    expect(Object.keys(args).sort()).toEqual([
      'notifications.orders',
      'notifications.orders.dlq',
      'notifications.orders.retry.1s',
      'notifications.orders.retry.5s',
    ]);
    for (const value of Object.values(args)) expect(value['x-queue-type']).toBe('quorum');
  });

  it('expires each delay queue after its tier and dead-letters back to the work queue, at least once', () => {
    expect(args['notifications.orders.retry.5s']).toMatchObject({
      'x-message-ttl': 5000,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'notifications.orders',
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
  });

  it('sends a message past the delivery limit from the work queue to the DLQ', () => {
    expect(args['notifications.orders']).toMatchObject({
      'x-delivery-limit': 20,
      'x-dead-letter-routing-key': 'notifications.orders.dlq',
      'x-dead-letter-strategy': 'at-least-once',
    });
    expect(args['notifications.orders']).not.toHaveProperty('x-message-ttl');
  });
});
