import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decide,
  newId,
  priceOrder,
  type Order,
  type OrderCommand,
  type PricedProduct,
} from './order';

const placedAt = new Date('2026-01-01T10:00:00.000Z');
const deadline = new Date('2026-01-01T10:00:30.000Z');

function pendingOrder(): Order {
  return {
    id: 'ord_1',
    userId: 'usr_1',
    status: 'PENDING',
    items: [
      { productId: 'prd_a', name: 'A', quantity: 2, unitPrice: { amount: 500, currency: 'USD' } },
    ],
    total: { amount: 1000, currency: 'USD' },
    placedAt,
    deadline,
    updatedAt: placedAt,
  };
}

const at = (offsetMs: number) => new Date(placedAt.getTime() + offsetMs);

describe('decide', () => {
  it('confirms a PENDING order on authorization, keeping the payment id', () => {
    const decision = decide(pendingOrder(), { type: 'authorize', paymentId: 'pay_1', at: at(1) });
    expect(decision.kind).toBe('apply');
    if (decision.kind !== 'apply') return;
    expect(decision.effect).toBe('confirmed');
    expect(decision.next).toMatchObject({ status: 'CONFIRMED', paymentId: 'pay_1' });
    expect(decision.next.confirmedAt).toEqual(at(1));
  });

  it('cancels a PENDING order on a failed payment with the reason', () => {
    const decision = decide(pendingOrder(), {
      type: 'fail',
      paymentId: 'pay_1',
      reason: 'PAYMENT_UNAVAILABLE',
      at: at(1),
    });
    expect(decision).toMatchObject({
      kind: 'apply',
      effect: 'cancelled',
      next: { status: 'CANCELLED', cancelReason: 'PAYMENT_UNAVAILABLE', paymentId: 'pay_1' },
    });
  });

  it('expires a PENDING order only once its deadline passed', () => {
    expect(decide(pendingOrder(), { type: 'expire', at: at(29_999) }).kind).toBe('ignore');
    expect(decide(pendingOrder(), { type: 'expire', at: deadline })).toMatchObject({
      kind: 'apply',
      next: { status: 'CANCELLED', cancelReason: 'PAYMENT_TIMEOUT' },
    });
  });

  it('ignores a late authorization for a cancelled order (payments voids it)', () => {
    const expired = decide(pendingOrder(), { type: 'expire', at: deadline });
    if (expired.kind !== 'apply') throw new Error('expected apply');
    expect(
      decide(expired.next, { type: 'authorize', paymentId: 'pay_1', at: at(31_000) }).kind,
    ).toBe('ignore');
  });

  it('lets the user cancel PENDING and CONFIRMED orders, and only once', () => {
    const confirmed = decide(pendingOrder(), { type: 'authorize', paymentId: 'pay_1', at: at(1) });
    if (confirmed.kind !== 'apply') throw new Error('expected apply');
    const cancelled = decide(confirmed.next, { type: 'cancel', at: at(2) });
    expect(cancelled).toMatchObject({
      kind: 'apply',
      next: { status: 'CANCELLED', cancelReason: 'USER_CANCELLED', paymentId: 'pay_1' },
    });
    if (cancelled.kind !== 'apply') return;
    expect(decide(cancelled.next, { type: 'cancel', at: at(3) }).kind).toBe('ignore');
  });

  const command: fc.Arbitrary<OrderCommand> = fc.oneof(
    fc.record({
      type: fc.constant('authorize' as const),
      paymentId: fc.constantFrom('pay_1', 'pay_2'),
      at: fc.integer({ min: 0, max: 60_000 }).map(at),
    }),
    fc.record({
      type: fc.constant('fail' as const),
      paymentId: fc.constantFrom('pay_1', 'pay_2'),
      reason: fc.constantFrom('PAYMENT_DECLINED' as const, 'PAYMENT_UNAVAILABLE' as const),
      at: fc.integer({ min: 0, max: 60_000 }).map(at),
    }),
    fc.record({
      type: fc.constant('expire' as const),
      at: fc.integer({ min: 0, max: 60_000 }).map(at),
    }),
    fc.record({
      type: fc.constant('cancel' as const),
      at: fc.integer({ min: 0, max: 60_000 }).map(at),
    }),
  );

  it('in any sequence of events: at most one confirmation and one cancellation, CANCELLED is final, a redelivered event changes nothing', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 30 }), (commands) => {
        let order = pendingOrder();
        let confirmations = 0;
        let cancellations = 0;
        for (const next of commands) {
          const decision = decide(order, next);
          if (decision.kind === 'ignore') continue;
          if (order.status === 'CANCELLED') return false;
          if (decision.effect === 'confirmed') confirmations += 1;
          else cancellations += 1;
          order = decision.next;
          // The same command again (at-least-once delivery) is ignored: the state moved on.
          if (decide(order, next).kind !== 'ignore') return false;
        }
        expect(confirmations).toBeLessThanOrEqual(1);
        expect(cancellations).toBeLessThanOrEqual(1);
        if (cancellations === 1) expect(order.status).toBe('CANCELLED');
        if (order.status === 'CONFIRMED') expect(order.paymentId).toBeDefined();
        // Only a user may cancel a confirmed order.
        if (confirmations === 1 && cancellations === 1)
          expect(order.cancelReason).toBe('USER_CANCELLED');
        return true;
      }),
    );
  });
});

describe('priceOrder', () => {
  const catalog = new Map<string, PricedProduct>([
    ['prd_a', { id: 'prd_a', name: 'A', price: { amount: 1999, currency: 'USD' } }],
    ['prd_b', { id: 'prd_b', name: 'B', price: { amount: 250, currency: 'USD' } }],
    ['prd_e', { id: 'prd_e', name: 'E', price: { amount: 100, currency: 'EUR' } }],
  ]);

  it('prices lines from the catalog and sums the total in minor units', () => {
    const priced = priceOrder(
      [
        { productId: 'prd_a', quantity: 3 },
        { productId: 'prd_b', quantity: 2 },
      ],
      catalog,
    );
    expect(priced).toEqual({
      ok: true,
      items: [
        {
          productId: 'prd_a',
          name: 'A',
          quantity: 3,
          unitPrice: { amount: 1999, currency: 'USD' },
        },
        { productId: 'prd_b', name: 'B', quantity: 2, unitPrice: { amount: 250, currency: 'USD' } },
      ],
      total: { amount: 6497, currency: 'USD' },
    });
  });

  it('refuses unknown and repeated products and mixed currencies', () => {
    expect(priceOrder([{ productId: 'prd_x', quantity: 1 }], catalog)).toEqual({
      ok: false,
      problems: [{ kind: 'unknown_product', index: 0, productId: 'prd_x' }],
    });
    expect(
      priceOrder(
        [
          { productId: 'prd_a', quantity: 1 },
          { productId: 'prd_a', quantity: 1 },
        ],
        catalog,
      ),
    ).toEqual({
      ok: false,
      problems: [{ kind: 'duplicate_product', index: 1, productId: 'prd_a' }],
    });
    expect(
      priceOrder(
        [
          { productId: 'prd_a', quantity: 1 },
          { productId: 'prd_e', quantity: 1 },
        ],
        catalog,
      ),
    ).toEqual({ ok: false, problems: [{ kind: 'mixed_currencies' }] });
  });

  it('the total is the exact integer sum of quantity × unit price', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            amount: fc.integer({ min: 0, max: 10_000_000 }),
            quantity: fc.integer({ min: 1, max: 1000 }),
          }),
          { minLength: 1, maxLength: 100 },
        ),
        (lines) => {
          const products = new Map(
            lines.map((line, index) => [
              `prd_${index}`,
              {
                id: `prd_${index}`,
                name: `P${index}`,
                price: { amount: line.amount, currency: 'USD' },
              },
            ]),
          );
          const priced = priceOrder(
            lines.map((line, index) => ({ productId: `prd_${index}`, quantity: line.quantity })),
            products,
          );
          if (!priced.ok) return false;
          const expected = lines.reduce((sum, line) => sum + line.amount * line.quantity, 0);
          return Number.isSafeInteger(priced.total.amount) && priced.total.amount === expected;
        },
      ),
    );
  });
});

describe('newId', () => {
  it('has the prefix, 26 Crockford characters, and sorts by time', () => {
    const earlier = newId('ord', new Date('2026-01-01T00:00:00Z'));
    const later = newId('ord', new Date('2026-01-01T00:00:00.001Z'));
    expect(earlier).toMatch(/^ord_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(earlier < later).toBe(true);
  });
});
