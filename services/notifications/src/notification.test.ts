import { createEvent } from '@bazaar/contracts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  decideAfterFailure,
  decodeCursor,
  encodeCursor,
  formatMoney,
  isWanted,
  messageIdFor,
  newId,
  notificationOf,
} from './notification';

describe('notificationOf', () => {
  it('maps each consumed event to its template, category and user', () => {
    const confirmed = createEvent('order.confirmed.v1', {
      source: '/orders',
      subject: 'ord_1',
      data: {
        orderId: 'ord_1',
        userId: 'usr_1',
        paymentId: 'pay_1',
        total: { amount: 6499, currency: 'USD' },
        confirmedAt: '2025-01-31T10:00:00.000Z',
      },
    });
    expect(notificationOf(confirmed)).toEqual({
      userId: 'usr_1',
      template: 'order-confirmed',
      category: 'transactional',
      params: { orderId: 'ord_1', total: '$64.99', confirmedAt: '2025-01-31T10:00:00.000Z' },
    });
    const cancelled = createEvent('order.cancelled.v1', {
      source: '/orders',
      subject: 'ord_2',
      data: {
        orderId: 'ord_2',
        userId: 'usr_2',
        reason: 'PAYMENT_TIMEOUT',
        releasedItems: [{ productId: 'prd_1', quantity: 1 }],
        total: { amount: 100, currency: 'USD' },
        cancelledAt: '2025-01-31T10:00:00.000Z',
      },
    });
    expect(notificationOf(cancelled)).toMatchObject({
      userId: 'usr_2',
      template: 'order-cancelled',
      params: { reason: 'the payment was not confirmed in time', total: '$1.00' },
    });
    const registered = createEvent('user.registered.v1', {
      source: '/users',
      subject: 'usr_3',
      data: {
        userId: 'usr_3',
        email: 'ada@example.com',
        name: 'Ada',
        registeredAt: '2025-01-31T10:00:00.000Z',
      },
    });
    // The address never goes into the stored parameters: it is resolved when sending.
    expect(JSON.stringify(notificationOf(registered).params)).not.toContain('ada@example.com');
  });
});

describe('formatMoney', () => {
  it('formats minor units in the currency’s exponent', () => {
    expect(formatMoney({ amount: 6499, currency: 'USD' })).toBe('$64.99');
    expect(formatMoney({ amount: 5, currency: 'USD' })).toBe('$0.05');
    expect(formatMoney({ amount: 1500, currency: 'JPY' })).toBe('¥1,500');
  });
});

describe('isWanted', () => {
  it('always sends transactional and operational messages; marketing only when opted in', () => {
    expect(isWanted('transactional', { marketingEmail: false })).toBe(true);
    expect(isWanted('operational', { marketingEmail: false })).toBe(true);
    expect(isWanted('marketing', { marketingEmail: false })).toBe(false);
    expect(isWanted('marketing', { marketingEmail: true })).toBe(true);
  });
});

describe('messageIdFor', () => {
  it('is stable per (source, recipient) and differs otherwise', () => {
    const id = messageIdFor('evt-1', 'usr_1', 'n.example');
    expect(id).toMatch(/^<[0-9a-f]{40}@n\.example>$/);
    expect(messageIdFor('evt-1', 'usr_1', 'n.example')).toBe(id);
    expect(messageIdFor('evt-1', 'usr_2', 'n.example')).not.toBe(id);
    expect(messageIdFor('evt-2', 'usr_1', 'n.example')).not.toBe(id);
    // The separator keeps ("a", "bc") and ("ab", "c") apart.
    expect(messageIdFor('a', 'bc', 'd')).not.toBe(messageIdFor('ab', 'c', 'd'));
  });
});

describe('backoff and failure decisions', () => {
  const policy = { baseMs: 1_000, maxMs: 60_000 };

  it('grows exponentially within [ceiling/2, ceiling], capped at maxMs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (n, r) => {
          const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(n - 1, 30));
          const delay = backoffDelayMs(n, policy, () => r);
          return delay >= Math.floor(ceiling / 2) && delay <= ceiling;
        },
      ),
    );
    expect(backoffDelayMs(1, policy, () => 1)).toBe(1_000);
    expect(backoffDelayMs(3, policy, () => 1)).toBe(4_000);
    expect(backoffDelayMs(30, policy, () => 1)).toBe(60_000);
  });

  it('dead-letters permanent failures at once and transient ones after the last attempt', () => {
    expect(decideAfterFailure(1, true, 10, policy)).toEqual({ action: 'dead' });
    expect(decideAfterFailure(10, false, 10, policy)).toEqual({ action: 'dead' });
    expect(decideAfterFailure(9, false, 10, policy, () => 0)).toEqual({
      action: 'retry',
      // 2^8 s is past the cap: half of maxMs with no jitter.
      delayMs: 30_000,
    });
  });
});

describe('inbox cursors', () => {
  it('round-trips and refuses what this service did not issue', () => {
    const id = newId('ntf', new Date('2025-01-31T10:00:00.000Z'));
    const cursor = { createdAt: new Date('2025-01-31T10:00:00.123Z'), id };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
    expect(decodeCursor('bm90LWEtY3Vyc29y')).toBeUndefined();
    expect(
      decodeCursor(Buffer.from('2025-01-31T10:00:00.000Z|x').toString('base64url')),
    ).toBeUndefined();
    expect(decodeCursor(Buffer.from(`not a date|${id}`).toString('base64url'))).toBeUndefined();
  });

  it('ids carry their prefix and sort by creation time', () => {
    const earlier = newId('dlv', new Date('2025-01-01T00:00:00Z'));
    const later = newId('dlv', new Date('2025-01-01T00:00:01Z'));
    expect(earlier).toMatch(/^dlv_[0-9A-Z]{26}$/);
    expect(earlier < later).toBe(true);
  });
});
