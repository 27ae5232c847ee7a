import { createEvent, eventTypeNames, type BazaarEvent } from '@bazaar/contracts';
import { describe, expect, it } from 'vitest';
import { factRowsOf, idHashOf, normalizeTimestamp, uniqueById } from './warehouse-event';

const money = (amount: number) => ({ amount, currency: 'USD' });
const at = '2026-01-31T10:00:00.000Z';
const ids = { orderId: 'ord_1', userId: 'usr_1', paymentId: 'pay_1' };

function sampleEvents(): BazaarEvent[] {
  return [
    createEvent('order.placed.v1', {
      source: '/orders',
      subject: 'ord_1',
      data: {
        orderId: 'ord_1',
        userId: 'usr_1',
        items: [
          { productId: 'prd_a', name: 'Kettle', quantity: 1, unitPrice: money(3999) },
          { productId: 'prd_b', name: 'Mug', quantity: 2, unitPrice: money(1250) },
        ],
        total: money(6499),
        paymentToken: 'tok_visa',
        placedAt: at,
        deadline: '2026-01-31T10:00:30.000Z',
      },
    }),
    createEvent('order.confirmed.v1', {
      source: '/orders',
      subject: 'ord_1',
      data: { ...ids, total: money(6499), confirmedAt: at },
    }),
    createEvent('order.cancelled.v1', {
      source: '/orders',
      subject: 'ord_1',
      data: {
        orderId: 'ord_1',
        userId: 'usr_1',
        reason: 'PAYMENT_TIMEOUT',
        releasedItems: [{ productId: 'prd_a', quantity: 1 }],
        total: money(6499),
        cancelledAt: at,
      },
    }),
    createEvent('payment.authorized.v1', {
      source: '/payments',
      subject: 'pay_1',
      data: { ...ids, amount: money(6499), authorizationId: 'auth_1', authorizedAt: at },
    }),
    createEvent('payment.failed.v1', {
      source: '/payments',
      subject: 'pay_1',
      data: {
        ...ids,
        amount: money(6499),
        reason: { code: 'CARD_DECLINED', message: 'declined' },
        failedAt: at,
      },
    }),
    createEvent('payment.captured.v1', {
      source: '/payments',
      subject: 'pay_1',
      data: { ...ids, amount: money(6499), authorizationId: 'auth_1', capturedAt: at },
    }),
    createEvent('payment.voided.v1', {
      source: '/payments',
      subject: 'pay_1',
      data: { ...ids, amount: money(6499), authorizationId: 'auth_1', voidedAt: at },
    }),
    createEvent('payment.refunded.v1', {
      source: '/payments',
      subject: 'pay_1',
      data: {
        ...ids,
        refundId: 'rfd_1',
        amount: money(1000),
        totalRefunded: money(1000),
        refundedAt: at,
      },
    }),
    createEvent('user.registered.v1', {
      source: '/users',
      subject: 'usr_1',
      data: { userId: 'usr_1', email: 'ada@example.com', name: 'Ada', registeredAt: at },
    }),
  ];
}

describe('factRowsOf', () => {
  it('keeps a raw row for every event type the contracts know', () => {
    const events = sampleEvents();
    expect(new Set(events.map((event) => event.type))).toEqual(new Set(eventTypeNames));
    const rows = factRowsOf(events);
    expect(rows.raw.map((row) => row.eventId)).toEqual(events.map((event) => event.id));
    expect(rows.raw[0]?.idHash).toBe(idHashOf(events[0]?.id ?? ''));
  });

  it('maps orders, their lines, payments and registrations to typed facts', () => {
    const rows = factRowsOf(sampleEvents());
    expect(rows.orders.map((fact) => [fact.kind, fact.amount, fact.cancelReason])).toEqual([
      ['placed', 6499, null],
      ['confirmed', 6499, null],
      ['cancelled', 6499, 'PAYMENT_TIMEOUT'],
    ]);
    expect(rows.orderItems.map((fact) => [fact.productId, fact.quantity, fact.unitAmount])).toEqual(
      [
        ['prd_a', 1, 3999],
        ['prd_b', 2, 1250],
      ],
    );
    expect(rows.payments.map((fact) => [fact.kind, fact.amount, fact.failureCode])).toEqual([
      ['authorized', 6499, null],
      ['failed', 6499, 'CARD_DECLINED'],
      ['captured', 6499, null],
      ['voided', 6499, null],
      ['refunded', 1000, null],
    ]);
    expect(rows.users.map((fact) => [fact.userId, fact.occurredAt])).toEqual([['usr_1', at]]);
    expect(rows.users[0]?.eventId).toBe(rows.raw.at(-1)?.eventId);
    // The user fact carries no email or name.
    expect(JSON.stringify(rows.users)).not.toContain('ada@example.com');
  });
});

describe('idHashOf', () => {
  it('is stable and spreads ids over 64 bits', () => {
    expect(idHashOf('abc')).toBe(idHashOf('abc'));
    expect(idHashOf('abc')).not.toBe(idHashOf('abd'));
    // MD5("abc") = 900150983cd24fb0…
    expect(idHashOf('abc')).toBe(0x900150983cd24fb0n);
  });
});

describe('normalizeTimestamp', () => {
  it('stores UTC with milliseconds, whatever offset the producer used', () => {
    expect(normalizeTimestamp('2026-01-31T12:00:00+02:00')).toBe('2026-01-31T10:00:00.000Z');
    expect(() => normalizeTimestamp('yesterday')).toThrow(RangeError);
  });
});

describe('uniqueById', () => {
  it('keeps the first event of each id, in order', () => {
    const events = [
      { id: 'a', n: 1 },
      { id: 'b', n: 2 },
      { id: 'a', n: 3 },
    ];
    expect(uniqueById(events)).toEqual([
      { id: 'a', n: 1 },
      { id: 'b', n: 2 },
    ]);
  });
});
