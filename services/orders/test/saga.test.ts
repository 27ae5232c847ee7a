import { randomUUID } from 'node:crypto';
import { eventually } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { OrderCommand } from '../src/order';
import type { TransitionResult } from '../src/order.service';
import {
  addProduct,
  getOrder,
  newUser,
  placeOrder,
  publishPayment,
  stockOf,
  tapOrderEvents,
  ordersTestScope,
  type RunningOrders,
  type TestUser,
} from './orders.fixture';

// payments' side is played by publishing real payment.* events to the broker; orders consumes them
// through its own queue and publishes order.* events through its outbox, which a tap records.
describe('the checkout saga', () => {
  const scope = ordersTestScope();
  let orders: RunningOrders;
  /** Same queue and database; the orders placed through it have a 3 s payment deadline. */
  let shortDeadline: RunningOrders;
  let tap: Awaited<ReturnType<typeof tapOrderEvents>>;
  let user: TestUser;
  /** Every instance consuming the scope's payment-events queue. */
  const instances: RunningOrders[] = [];
  const start = async (env: Record<string, string>) => {
    const instance = await scope.start(env);
    instances.push(instance);
    return instance;
  };

  beforeAll(async () => {
    // The deadline is stored on each order when it is placed. Orders placed through `orders` have
    // one far past the test, so a slow machine never turns an approval or a decline into a
    // timeout; the timeout path places its order through `shortDeadline`.
    orders = await start({ ORDER_PAYMENT_DEADLINE_MS: '600000' });
    shortDeadline = await start({ ORDER_PAYMENT_DEADLINE_MS: '3000' });
    tap = await tapOrderEvents(orders.bus);
    user = await newUser();
  });

  afterAll(async () => {
    await tap.close();
    await scope.close();
  });

  async function place(quantity: number, stock = 10, via = orders) {
    const productId = await addProduct(orders.db, stock, 500);
    const placed = await placeOrder(via.url, user, [{ productId, quantity }]);
    expect(placed.status).toBe(202);
    const id = placed.body.id as string;
    await eventually(
      () => (tap.of(id).some((e) => e.type === 'order.placed.v1') ? true : undefined),
      {
        what: 'order.placed published',
      },
    );
    return { id, productId, order: { id, userId: user.id, amount: 500 * quantity } };
  }

  /**
   * How many different events of a type were published for an order. The relay publishes at least
   * once (consumers drop a repeated event id), so a repeat is not a second confirmation.
   */
  const eventsOfType = (id: string, type: string) =>
    new Set(
      tap
        .of(id)
        .filter((e) => e.type === type)
        .map((e) => e.id),
    ).size;

  /**
   * Waits for a product's stock to be what an order's end left. The stock is released or settled
   * right after the order's new status is stored, so a reader may see the status a moment before.
   */
  const stockBecomes = (productId: string, expected: { stock: number; reserved: number }) =>
    eventually(
      async () => {
        const stock = await stockOf(orders.db, productId);
        return stock.stock === expected.stock && stock.reserved === expected.reserved
          ? true
          : undefined;
      },
      { what: `stock of ${productId} at ${JSON.stringify(expected)}` },
    );

  /**
   * Publishes with `publish`, then waits until the instances have handled `count` deliveries of
   * `command` for the order, and returns what each transition did. A later event proves nothing
   * about an earlier one: the queue is consumed concurrently, by every instance.
   */
  async function outcomesOf(
    orderId: string,
    command: OrderCommand['type'],
    count: number,
    publish: () => Promise<void>,
  ): Promise<TransitionResult[]> {
    const outcomes: TransitionResult[] = [];
    const spies = instances.map(({ service }) => {
      const transition = service.orders.transition.bind(service.orders);
      return vi.spyOn(service.orders, 'transition').mockImplementation(async (id, next) => {
        const result = await transition(id, next);
        if (id === orderId && next.type === command) outcomes.push(result);
        return result;
      });
    });
    try {
      await publish();
      await eventually(() => (outcomes.length >= count ? true : undefined), {
        what: `${count} ${command} deliveries for ${orderId} handled`,
      });
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    return outcomes;
  }

  const statusOf = async (id: string) => (await getOrder(orders.url, user, id)).body;
  const until = (id: string, status: string) =>
    eventually(async () => ((await statusOf(id)).status === status ? true : undefined), {
      what: `order ${id} ${status}`,
    });

  it('order.placed carries the priced order, the token and the deadline', async () => {
    const { id, productId } = await place(2);
    const placed = tap.of(id).find((event) => event.type === 'order.placed.v1');
    expect(placed?.data).toMatchObject({
      orderId: id,
      userId: user.id,
      items: [{ productId, quantity: 2, unitPrice: { amount: 500, currency: 'USD' } }],
      total: { amount: 1000, currency: 'USD' },
      paymentToken: 'tok_visa',
    });
  });

  it('approve: payment.authorized confirms and emits order.confirmed; stock stays sold', async () => {
    const { id, productId, order } = await place(3);
    await publishPayment(orders.bus, order, 'authorized', 'pay_approve1');
    await until(id, 'CONFIRMED');
    await eventually(() =>
      tap.of(id).some((e) => e.type === 'order.confirmed.v1') ? true : undefined,
    );
    const confirmed = tap.of(id).find((event) => event.type === 'order.confirmed.v1');
    expect(confirmed?.data).toMatchObject({ paymentId: 'pay_approve1', total: { amount: 1500 } });
    // Sold: out of stock, and the reservation is settled.
    await eventually(async () => {
      const stock = await stockOf(orders.db, productId);
      return stock.stock === 7 && stock.reserved === 0 ? true : undefined;
    });
  });

  it('decline: payment.failed cancels with PAYMENT_DECLINED, releases stock, emits order.cancelled', async () => {
    const { id, productId, order } = await place(4);
    expect((await stockOf(orders.db, productId)).stock).toBe(6);
    await publishPayment(orders.bus, order, 'declined', 'pay_decline1');
    await until(id, 'CANCELLED');
    expect((await statusOf(id)).cancelReason).toBe('PAYMENT_DECLINED');
    await stockBecomes(productId, { stock: 10, reserved: 0 });
    await eventually(() =>
      tap.of(id).some((e) => e.type === 'order.cancelled.v1') ? true : undefined,
    );
    const cancelled = tap.of(id).find((event) => event.type === 'order.cancelled.v1');
    expect(cancelled?.data).toMatchObject({
      reason: 'PAYMENT_DECLINED',
      paymentId: 'pay_decline1',
      releasedItems: [{ productId, quantity: 4 }],
    });
  });

  it('processor unavailable: cancelled with PAYMENT_UNAVAILABLE', async () => {
    const { id, productId, order } = await place(1);
    await publishPayment(orders.bus, order, 'unavailable');
    await until(id, 'CANCELLED');
    expect((await statusOf(id)).cancelReason).toBe('PAYMENT_UNAVAILABLE');
    await stockBecomes(productId, { stock: 10, reserved: 0 });
  });

  it('timeout, then a late authorization: stays CANCELLED (PAYMENT_TIMEOUT), stock released once', async () => {
    const { id, productId, order } = await place(2, 10, shortDeadline);
    await until(id, 'CANCELLED');
    expect((await statusOf(id)).cancelReason).toBe('PAYMENT_TIMEOUT');
    await stockBecomes(productId, { stock: 10, reserved: 0 });
    // The late authorization (payments voids it on order.cancelled) and a duplicate of it.
    const eventId = randomUUID();
    const late = await outcomesOf(id, 'authorize', 2, async () => {
      await publishPayment(orders.bus, order, 'authorized', 'pay_late1', eventId);
      await publishPayment(orders.bus, order, 'authorized', 'pay_late1', eventId);
    });
    expect(late).toEqual(['ignored', 'ignored']);
    expect((await statusOf(id)).status).toBe('CANCELLED');
    expect(await stockOf(orders.db, productId)).toEqual({ stock: 10, reserved: 0 });
    await eventually(() =>
      tap.of(id).some((e) => e.type === 'order.cancelled.v1') ? true : undefined,
    );
    expect(eventsOfType(id, 'order.cancelled.v1')).toBe(1);
    expect(eventsOfType(id, 'order.confirmed.v1')).toBe(0);
  });

  it('duplicate and out-of-order events: one confirmation, a later failure changes nothing', async () => {
    const { id, productId, order } = await place(2);
    const eventId = randomUUID();
    await Promise.all([
      publishPayment(orders.bus, order, 'authorized', 'pay_dup1', eventId),
      publishPayment(orders.bus, order, 'authorized', 'pay_dup1', eventId),
      publishPayment(orders.bus, order, 'authorized', 'pay_dup1', eventId),
    ]);
    await until(id, 'CONFIRMED');
    await stockBecomes(productId, { stock: 8, reserved: 0 });
    const failure = await outcomesOf(id, 'fail', 1, () =>
      publishPayment(orders.bus, order, 'declined', 'pay_dup1'),
    );
    expect(failure).toEqual(['ignored']);
    expect((await statusOf(id)).status).toBe('CONFIRMED');
    expect(await stockOf(orders.db, productId)).toEqual({ stock: 8, reserved: 0 });
    await eventually(() =>
      tap.of(id).some((e) => e.type === 'order.confirmed.v1') ? true : undefined,
    );
    expect(eventsOfType(id, 'order.confirmed.v1')).toBe(1);
    expect(eventsOfType(id, 'order.cancelled.v1')).toBe(0);
  });

  it('a failure racing an authorization ends in exactly one terminal state with consistent stock', async () => {
    const placed = await Promise.all(Array.from({ length: 10 }, () => place(1, 5)));
    await Promise.all(
      placed.flatMap(({ order }) => [
        publishPayment(orders.bus, order, 'authorized'),
        publishPayment(orders.bus, order, 'declined'),
      ]),
    );
    for (const { id, productId } of placed) {
      await eventually(async () => ((await statusOf(id)).status !== 'PENDING' ? true : undefined));
      const final = await statusOf(id);
      const stock = await eventually(async () => {
        const s = await stockOf(orders.db, productId);
        return s.reserved === 0 ? s : undefined;
      });
      expect(stock.stock).toBe(final.status === 'CONFIRMED' ? 4 : 5);
    }
  });

  it('an order this instance placed but another instance cancelled is not confirmed from what this one remembers', async () => {
    const other = await start({ ORDER_PAYMENT_DEADLINE_MS: '600000' });
    const placed = await place(2);
    // The other instance cancels it (user cancel): this instance still remembers it PENDING.
    const cancelled = await fetch(`${other.url}/v1/orders/${placed.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.token}` },
    });
    expect(cancelled.status).toBe(200);
    expect(await stockOf(orders.db, placed.productId)).toEqual({ stock: 10, reserved: 0 });
    const result = await orders.service.orders.transition(placed.id, {
      type: 'authorize',
      paymentId: 'pay_remembered1',
      at: new Date(),
    });
    expect(result).toBe('ignored');
    expect(await statusOf(placed.id)).toMatchObject({
      status: 'CANCELLED',
      cancelReason: 'USER_CANCELLED',
    });
    expect(await stockOf(orders.db, placed.productId)).toEqual({ stock: 10, reserved: 0 });
    expect(tap.of(placed.id).some((e) => e.type === 'order.confirmed.v1')).toBe(false);
  });

  it('the user cancels a PENDING and a CONFIRMED order (USER_CANCELLED, refund via order.cancelled)', async () => {
    const pending = await place(2);
    const cancel = (id: string, who: TestUser = user) =>
      fetch(`${orders.url}/v1/orders/${id}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${who.token}` },
      });
    const stranger = await newUser();
    expect((await cancel(pending.id, stranger)).status).toBe(404);
    const response = await cancel(pending.id);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: 'CANCELLED',
      cancelReason: 'USER_CANCELLED',
    });
    expect(await stockOf(orders.db, pending.productId)).toEqual({ stock: 10, reserved: 0 });

    const confirmed = await place(3);
    await publishPayment(orders.bus, confirmed.order, 'authorized', 'pay_usercancel1');
    await until(confirmed.id, 'CONFIRMED');
    expect((await cancel(confirmed.id)).status).toBe(200);
    await eventually(async () => {
      const s = await stockOf(orders.db, confirmed.productId);
      return s.stock === 10 && s.reserved === 0 ? true : undefined;
    });
    await eventually(() =>
      tap.of(confirmed.id).some((e) => e.type === 'order.cancelled.v1') ? true : undefined,
    );
    expect(tap.of(confirmed.id).find((e) => e.type === 'order.cancelled.v1')?.data).toMatchObject({
      reason: 'USER_CANCELLED',
      paymentId: 'pay_usercancel1',
    });
    // Cancelling again changes nothing and releases nothing twice.
    expect((await cancel(confirmed.id)).status).toBe(200);
    expect(await stockOf(orders.db, confirmed.productId)).toEqual({ stock: 10, reserved: 0 });
  });
});
