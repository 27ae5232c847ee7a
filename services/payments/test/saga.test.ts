import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventually } from '@bazaar/testing';
import { paymentIdOf } from '../src/payment';
import {
  armFault,
  clearFaults,
  orderCancelled,
  orderConfirmed,
  orderPlaced,
  outboxTypesOf,
  paymentOf,
  processorRecords,
  withNewId,
  type ChildService,
  type OrdersSide,
  type RunningPayments,
  paymentsTestScope,
  type PaymentsTestScope,
} from './payments.fixture';

// The saga as orders drives it, over the test stack's RabbitMQ, PostgreSQL and a private
// psp-sandbox: order.placed.v1 → payment.authorized / failed; order.confirmed.v1 → captured;
// order.cancelled.v1 → voided / refunded; redeliveries and processor faults never charge twice.

let world: PaymentsTestScope;
let psp: ChildService;
let payments: RunningPayments;
let orders: OrdersSide;

beforeAll(async () => {
  world = await paymentsTestScope({
    pspEnv: { PSP_SANDBOX_SLOW_DELAY_MS: '1500ms' },
    paymentsEnv: { PSP_TIMEOUT_MS: '2s', PAYMENTS_SWEEP_INTERVAL_MS: '500ms' },
  });
  ({ psp, payments, orders } = world);
});

// Includes the SQL check of the ledger invariants over everything this file did.
afterAll(() => world?.close());

describe('authorization', () => {
  it('authorizes tok_visa: payment, balanced hold and payment.authorized in one transaction', async () => {
    const placed = orderPlaced({ amount: 6499 });
    await orders.publish(placed);
    const event = await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    const paymentId = paymentIdOf(placed.data.orderId);
    expect(event.data).toMatchObject({
      paymentId,
      orderId: placed.data.orderId,
      userId: placed.data.userId,
      amount: { amount: 6499, currency: 'USD' },
    });
    const row = await paymentOf(payments.pool, placed.data.orderId);
    expect(row).toMatchObject({ id: paymentId, status: 'AUTHORIZED', amount: '6499' });
    expect(row?.authorization_id).toBe(event.data.authorizationId);
    const lines = await payments.pool.query<{ account: string; amount: string }>(
      `SELECT l.account, l.amount FROM ledger_lines l JOIN ledger_transactions t ON t.id = l.transaction_id
       WHERE t.payment_id = $1 ORDER BY l.account`,
      [paymentId],
    );
    expect(lines.rows).toEqual([
      { account: 'card_authorizations', amount: '6499' },
      { account: 'customer_holds', amount: '-6499' },
    ]);
    const records = await processorRecords(psp.url, paymentId);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: 'approved', amount: { amount: 6499 } });
  });

  it.each([
    ['tok_chargeDeclined', 'CARD_DECLINED'],
    ['tok_insufficientFunds', 'INSUFFICIENT_FUNDS'],
    ['tok_unknownCard', 'INVALID_CARD_TOKEN'],
  ])('fails %s with reason %s and holds nothing', async (token, code) => {
    const placed = orderPlaced({ token });
    await orders.publish(placed);
    const event = await orders.waitFor('payment.failed.v1', placed.data.orderId);
    expect(event.data.reason.code).toBe(code);
    const row = await paymentOf(payments.pool, placed.data.orderId);
    expect(row).toMatchObject({ status: 'FAILED', failure_code: code });
    const lines = await payments.pool.query(
      'SELECT 1 FROM ledger_transactions WHERE payment_id = $1',
      [row?.id],
    );
    expect(lines.rowCount).toBe(0);
  });

  it('processes a redelivered event once: one payment, one authorization, one event', async () => {
    const placed = orderPlaced();
    // The same event three times (a redelivery), and a copy with another id (a republish).
    await orders.publish(placed, placed, placed, withNewId(placed));
    await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    const paymentId = paymentIdOf(placed.data.orderId);
    // Let every copy be handled before counting.
    await eventually(
      async () => {
        const { rows } = await payments.pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM processed_events WHERE event_id = $1`,
          [placed.id],
        );
        return rows[0]?.n === '1' ? true : undefined;
      },
      { what: 'event recorded' },
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await outboxTypesOf(payments.pool, paymentId)).toEqual(['payment.authorized.v1']);
    expect(await processorRecords(psp.url, paymentId)).toHaveLength(1);
    expect(orders.eventsOf(placed.data.orderId)).toHaveLength(1);
  });

  it('does not charge twice when the processor charges and then answers too late', async () => {
    // The processor approves and stores the reply, but answers after payments' 2 s deadline: the
    // delivery fails, the bus redelivers, and the retry's same Idempotency-Key gets the stored
    // approval instead of a second authorization.
    await armFault(psp.url, {
      mode: 'delay_after',
      operation: 'authorize',
      count: 1,
      delayMs: 3000,
    });
    const placed = orderPlaced();
    await orders.publish(placed);
    const event = await orders.waitFor('payment.authorized.v1', placed.data.orderId, 30_000);
    const paymentId = paymentIdOf(placed.data.orderId);
    const records = await processorRecords(psp.url, paymentId);
    expect(records).toHaveLength(1);
    expect(records[0]?.id).toBe(event.data.authorizationId);
    const attempts = await payments.pool.query(
      `SELECT 1 FROM processed_events WHERE event_id = $1`,
      [placed.id],
    );
    expect(attempts.rowCount).toBe(1);
    await clearFaults(psp.url);
  });

  it('does not charge twice when the processor charges and then fails (503)', async () => {
    // This time http-client retries within the call, with the same key: the replay is the approval.
    await armFault(psp.url, { mode: 'fail_after', operation: 'authorize', count: 1 });
    const placed = orderPlaced();
    await orders.publish(placed);
    const event = await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    const records = await processorRecords(psp.url, paymentIdOf(placed.data.orderId));
    expect(records.map((record) => record.id)).toEqual([event.data.authorizationId]);
    await clearFaults(psp.url);
  });
});

describe('capture, void and refund from order events', () => {
  it('captures on order.confirmed: payment.captured, sales credited', async () => {
    const placed = orderPlaced({ amount: 2500, currency: 'EUR' });
    await orders.publish(placed);
    const authorized = await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    const confirmed = orderConfirmed(placed, authorized.data.paymentId);
    await orders.publish(confirmed, confirmed);
    const captured = await orders.waitFor('payment.captured.v1', placed.data.orderId);
    expect(captured.data.amount).toEqual({ amount: 2500, currency: 'EUR' });
    expect(await paymentOf(payments.pool, placed.data.orderId)).toMatchObject({
      status: 'CAPTURED',
      captured_amount: '2500',
    });
    const [record] = await processorRecords(psp.url, authorized.data.paymentId);
    expect(record).toMatchObject({ status: 'captured', capturedAmount: 2500 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await outboxTypesOf(payments.pool, authorized.data.paymentId)).toEqual([
      'payment.authorized.v1',
      'payment.captured.v1',
    ]);
  });

  it('voids an authorized payment on order.cancelled', async () => {
    const placed = orderPlaced();
    await orders.publish(placed);
    const authorized = await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    await orders.publish(orderCancelled(placed, 'PAYMENT_TIMEOUT'));
    const voided = await orders.waitFor('payment.voided.v1', placed.data.orderId);
    expect(voided.data.authorizationId).toBe(authorized.data.authorizationId);
    expect(await paymentOf(payments.pool, placed.data.orderId)).toMatchObject({ status: 'VOIDED' });
    const [record] = await processorRecords(psp.url, authorized.data.paymentId);
    expect(record?.status).toBe('voided');
  });

  it('refunds a captured payment in full when the confirmed order is cancelled', async () => {
    const placed = orderPlaced({ amount: 1800 });
    await orders.publish(placed);
    const authorized = await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    await orders.publish(orderConfirmed(placed, authorized.data.paymentId));
    await orders.waitFor('payment.captured.v1', placed.data.orderId);
    await orders.publish(orderCancelled(placed, 'USER_CANCELLED'));
    const refunded = await orders.waitFor('payment.refunded.v1', placed.data.orderId);
    expect(refunded.data.amount).toEqual({ amount: 1800, currency: 'USD' });
    expect(refunded.data.totalRefunded).toEqual({ amount: 1800, currency: 'USD' });
    expect(await paymentOf(payments.pool, placed.data.orderId)).toMatchObject({
      status: 'REFUNDED',
      refunded_amount: '1800',
    });
    const [record] = await processorRecords(psp.url, authorized.data.paymentId);
    expect(record).toMatchObject({ capturedAmount: 1800, refundedAmount: 1800 });
  });

  it('never authorizes an order cancelled before its placement was handled', async () => {
    const placed = orderPlaced();
    await orders.publish(orderCancelled(placed, 'PAYMENT_TIMEOUT'));
    await eventually(
      async () => {
        const { rowCount } = await payments.pool.query(
          'SELECT 1 FROM order_cancellations WHERE order_id = $1',
          [placed.data.orderId],
        );
        return rowCount === 1 ? true : undefined;
      },
      { what: 'cancellation remembered' },
    );
    await orders.publish(placed);
    await eventually(
      async () => (await paymentOf(payments.pool, placed.data.orderId)) ?? undefined,
      {
        what: 'payment recorded',
      },
    );
    expect(await paymentOf(payments.pool, placed.data.orderId)).toMatchObject({
      status: 'CANCELLED',
    });
    expect(await processorRecords(psp.url, paymentIdOf(placed.data.orderId))).toEqual([]);
    expect(orders.eventsOf(placed.data.orderId)).toEqual([]);
  });

  it('voids a late authorization: the order was cancelled while the processor was deciding', async () => {
    // tok_slow takes 1.5 s here; the cancellation (orders' deadline) arrives in the meantime.
    const placed = orderPlaced({ token: 'tok_slow' });
    const paymentId = paymentIdOf(placed.data.orderId);
    // The cancellation is published once payments has asked the processor (not after a guess of
    // how long that takes): from then on, every path has to end in a void.
    let askedProcessor: () => void = () => undefined;
    const isAsked = new Promise<void>((resolve) => {
      askedProcessor = resolve;
    });
    const authorize = payments.processor.authorize.bind(payments.processor);
    const spy = vi.spyOn(payments.processor, 'authorize').mockImplementation((input) => {
      if (input.reference === paymentId) askedProcessor();
      return authorize(input);
    });
    try {
      await orders.publish(placed);
      await isAsked;
    } finally {
      spy.mockRestore();
    }
    await orders.publish(orderCancelled(placed, 'PAYMENT_TIMEOUT'));
    const voided = await orders.waitFor('payment.voided.v1', placed.data.orderId, 30_000);
    expect(orders.eventsOf(placed.data.orderId).map((event) => event.type)).toEqual([
      'payment.authorized.v1',
      'payment.voided.v1',
    ]);
    const records = await processorRecords(psp.url, voided.data.paymentId);
    expect(records).toHaveLength(1);
    expect(records[0]?.status).toBe('voided');
  });
});
