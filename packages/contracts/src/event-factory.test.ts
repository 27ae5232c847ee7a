import { describe, expect, expectTypeOf, it } from 'vitest';
import { createEvent, InvalidEventError } from './event-factory';
import { validateEvent } from './event-validation';
import type { OrderPlacedV1, OrderPlacedV1Data } from './generated/event-types';

const data: OrderPlacedV1Data = {
  orderId: 'ord_01J9Z4A7B8C9D0E1F2G3H4J5K6',
  userId: 'usr_01J9Z3K4M5N6P7Q8R9S0T1V2W3',
  items: [
    {
      productId: 'prd_01J9YTEA0KETTLE00000000000',
      name: 'Stainless steel kettle',
      quantity: 2,
      unitPrice: { amount: 3999, currency: 'USD' },
    },
  ],
  total: { amount: 7998, currency: 'USD' },
  paymentToken: 'tok_visa',
  placedAt: '2025-01-31T10:00:00.000Z',
  deadline: '2025-01-31T10:00:30.000Z',
};

describe('createEvent', () => {
  it('fills in the envelope and the result validates', () => {
    const before = Date.now();
    const event = createEvent('order.placed.v1', {
      source: '/orders',
      subject: data.orderId,
      data,
    });
    expectTypeOf(event).toEqualTypeOf<OrderPlacedV1>();
    expect(event).toMatchObject({
      specversion: '1.0',
      source: '/orders',
      type: 'order.placed.v1',
      datacontenttype: 'application/json',
      subject: data.orderId,
      data,
    });
    expect(event.id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(Date.parse(event.time)).toBeGreaterThanOrEqual(before - (before % 1000));
    expect(Date.parse(event.time)).toBeLessThanOrEqual(Date.now());
    expect('traceparent' in event).toBe(false);
    expect(validateEvent(event)).toEqual({ ok: true, event });
  });

  it('gives every event its own id', () => {
    const input = { source: '/orders', subject: data.orderId, data } as const;
    expect(createEvent('order.placed.v1', input).id).not.toBe(
      createEvent('order.placed.v1', input).id,
    );
  });

  it('keeps a given id, time and trace context', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const event = createEvent('payment.refunded.v1', {
      source: '/payments',
      subject: 'pay_01J9Z4B1C2D3E4F5G6H7J8K9M0',
      id: 'evt-1',
      time: new Date('2025-02-03T14:20:00Z'),
      traceparent,
      tracestate: 'bazaar=1',
      data: {
        paymentId: 'pay_01J9Z4B1C2D3E4F5G6H7J8K9M0',
        orderId: 'ord_01J9Z4A7B8C9D0E1F2G3H4J5K6',
        userId: 'usr_01J9Z3K4M5N6P7Q8R9S0T1V2W3',
        refundId: 'rfd_01JA2B3C4D5E6F7G8H9J0K1M2N',
        amount: { amount: 2500, currency: 'USD' },
        totalRefunded: { amount: 2500, currency: 'USD' },
        refundedAt: '2025-02-03T14:20:00.000Z',
      },
    });
    expect(event).toMatchObject({
      id: 'evt-1',
      time: '2025-02-03T14:20:00.000Z',
      traceparent,
      tracestate: 'bazaar=1',
    });
    expect(validateEvent(event).ok).toBe(true);
  });

  it('throws InvalidEventError listing every problem of an invalid event', () => {
    const create = () =>
      createEvent('order.placed.v1', {
        source: '/orders',
        subject: data.orderId,
        data: { ...data, total: { amount: -5, currency: 'usd' }, paymentToken: '4242424242424242' },
      });
    expect(create).toThrow(InvalidEventError);
    try {
      create();
    } catch (error) {
      expect((error as InvalidEventError).type).toBe('order.placed.v1');
      expect((error as InvalidEventError).errors.map((issue) => issue.path)).toEqual([
        '/data/total/amount',
        '/data/total/currency',
        // Both the tok_ pattern and the no-card-number rule refuse it.
        '/data/paymentToken',
        '/data/paymentToken',
      ]);
      expect((error as Error).message).toContain('/data/total/amount must be >= 0');
    }
  });

  it('types the source, subject and data by event type', () => {
    expectTypeOf(createEvent<'user.registered.v1'>)
      .parameter(1)
      .toHaveProperty('source')
      .toEqualTypeOf<'/users'>();
    expect(() =>
      createEvent('order.placed.v1', {
        // @ts-expect-error: order.placed.v1 comes from /orders
        source: '/payments',
        subject: data.orderId,
        data,
      }),
    ).toThrow(InvalidEventError);
  });
});
