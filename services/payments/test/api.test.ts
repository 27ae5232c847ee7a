import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentIdOf } from '../src/payment';
import {
  adminToken,
  armFault,
  clearFaults,
  orderConfirmed,
  orderPlaced,
  paymentOf,
  processorRecords,
  registerCustomer,
  type ChildService,
  type OrdersSide,
  type RunningPayments,
  paymentsTestScope,
  type PaymentsTestScope,
} from './payments.fixture';

// The public API with real tokens from the test stack's users service: who may read a payment,
// and admin refunds — partial, full, never more than captured, idempotent, resumable.

let world: PaymentsTestScope;
let psp: ChildService;
let payments: RunningPayments;
let orders: OrdersSide;
let admin: string;
let customer: { userId: string; token: string };
let stranger: { userId: string; token: string };

beforeAll(async () => {
  world = await paymentsTestScope({ paymentsEnv: { PSP_TIMEOUT_MS: '1s', PSP_MAX_ATTEMPTS: '1' } });
  ({ psp, payments, orders } = world);
  [admin, customer, stranger] = await Promise.all([
    adminToken(),
    registerCustomer(),
    registerCustomer(),
  ]);
});

afterAll(() => world?.close());

async function call(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; key?: string } = {},
) {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.key !== undefined) headers['idempotency-key'] = options.key;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${payments.url}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** An order of `customer`, authorized and captured through the events. */
async function capturedOrder(amount: number, currency = 'USD') {
  const placed = orderPlaced({ userId: customer.userId, amount, currency });
  await orders.publish(placed);
  const authorized = await orders.waitFor('payment.authorized.v1', placed.data.orderId);
  await orders.publish(orderConfirmed(placed, authorized.data.paymentId));
  await orders.waitFor('payment.captured.v1', placed.data.orderId);
  return { placed, paymentId: authorized.data.paymentId };
}

function refund(paymentId: string, amount: number, key: string, token = admin, currency = 'USD') {
  return call('POST', `/v1/payments/${paymentId}/refunds`, {
    token,
    key,
    body: { amount: { amount, currency } },
  });
}

describe('GET /v1/payments?orderId=', () => {
  it('shows the owner and an admin the payment, a stranger nothing', async () => {
    const { placed, paymentId } = await capturedOrder(4200);
    const path = `/v1/payments?orderId=${placed.data.orderId}`;
    const mine = await call('GET', path, { token: customer.token });
    expect(mine.status).toBe(200);
    expect(mine.body).toEqual({
      items: [
        expect.objectContaining({
          id: paymentId,
          orderId: placed.data.orderId,
          status: 'CAPTURED',
          amount: { amount: 4200, currency: 'USD' },
          captured: { amount: 4200, currency: 'USD' },
          refunded: { amount: 0, currency: 'USD' },
        }),
      ],
    });
    expect((await call('GET', path, { token: admin })).body).toEqual(mine.body);
    expect((await call('GET', path, { token: stranger.token })).body).toEqual({ items: [] });
  });

  it('needs a valid token and an orderId', async () => {
    const anonymous = await call('GET', '/v1/payments?orderId=ord_x');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ code: 'UNAUTHENTICATED' });
    const forged = await call('GET', '/v1/payments?orderId=ord_x', { token: 'not.a.jwt' });
    expect(forged.status).toBe(401);
    const missing = await call('GET', '/v1/payments', { token: customer.token });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('reports a failed payment with its reason', async () => {
    const placed = orderPlaced({ userId: customer.userId, token: 'tok_chargeDeclined' });
    await orders.publish(placed);
    await orders.waitFor('payment.failed.v1', placed.data.orderId);
    const reply = await call('GET', `/v1/payments?orderId=${placed.data.orderId}`, {
      token: customer.token,
    });
    expect(reply.body.items).toEqual([
      expect.objectContaining({
        status: 'FAILED',
        failureReason: { code: 'CARD_DECLINED', message: 'The card was declined.' },
      }),
    ]);
  });
});

describe('POST /v1/payments/{id}/refunds', () => {
  it('refunds partially then fully, never more than captured', async () => {
    const { placed, paymentId } = await capturedOrder(1000);
    const first = await refund(paymentId, 300, 'r-1');
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ paymentId, status: 'SUCCEEDED', amount: { amount: 300 } });
    const refunded = await orders.waitFor('payment.refunded.v1', placed.data.orderId);
    expect(refunded.data.totalRefunded.amount).toBe(300);

    const tooMuch = await refund(paymentId, 701, 'r-2');
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body).toMatchObject({
      code: 'UNPROCESSABLE',
      reason: 'refund_exceeds_captured',
    });

    const rest = await refund(paymentId, 700, 'r-3');
    expect(rest.status).toBe(201);
    expect(await paymentOf(payments.pool, placed.data.orderId)).toMatchObject({
      status: 'REFUNDED',
      refunded_amount: '1000',
    });
    const nothingLeft = await refund(paymentId, 1, 'r-4');
    expect(nothingLeft.status).toBe(409);
    expect(nothingLeft.body).toMatchObject({ code: 'CONFLICT', reason: 'not_refundable' });

    const [record] = await processorRecords(psp.url, paymentId);
    expect(record).toMatchObject({ capturedAmount: 1000, refundedAmount: 1000 });
  });

  it('replays the same key and body, and refuses the key with another amount', async () => {
    const { paymentId } = await capturedOrder(900);
    const first = await refund(paymentId, 100, 'same-key');
    const again = await refund(paymentId, 100, 'same-key');
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const other = await refund(paymentId, 200, 'same-key');
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    const [record] = await processorRecords(psp.url, paymentId);
    expect(record?.refundedAmount).toBe(100);
  });

  it('lets concurrent refunds together never exceed the capture', async () => {
    const { paymentId } = await capturedOrder(1000);
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, index) => refund(paymentId, 300, `race-${index}`)),
    );
    const succeeded = replies.filter((reply) => reply.status === 201);
    expect(succeeded).toHaveLength(3);
    expect(replies.filter((reply) => reply.status === 422)).toHaveLength(5);
    const [record] = await processorRecords(psp.url, paymentId);
    expect(record?.refundedAmount).toBe(900);
  });

  it('keeps a refund pending while the processor is down; the same key completes it once', async () => {
    const { paymentId } = await capturedOrder(500);
    await armFault(psp.url, { mode: 'fail_after', operation: 'refund', count: 1 });
    const failed = await refund(paymentId, 200, 'resume-1');
    expect(failed.status).toBe(503);
    expect(failed.body).toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      reason: 'processor_unavailable',
    });
    // The processor did refund (fail_after); the retry with the same key replays it, not twice.
    const retried = await refund(paymentId, 200, 'resume-1');
    expect(retried.status).toBe(201);
    const [record] = await processorRecords(psp.url, paymentId);
    expect(record?.refundedAmount).toBe(200);
    const { rows } = await payments.pool.query<{ refunded_amount: string }>(
      'SELECT refunded_amount FROM payments WHERE id = $1',
      [paymentId],
    );
    expect(rows[0]?.refunded_amount).toBe('200');
    await clearFaults(psp.url);
  });

  it('is for admins only, needs an Idempotency-Key, a valid amount and an existing payment', async () => {
    const { paymentId } = await capturedOrder(300);
    const byCustomer = await refund(paymentId, 100, 'c-1', customer.token);
    expect(byCustomer.status).toBe(403);
    expect(byCustomer.body).toMatchObject({ code: 'FORBIDDEN' });
    const noKey = await call('POST', `/v1/payments/${paymentId}/refunds`, {
      token: admin,
      body: { amount: { amount: 100, currency: 'USD' } },
    });
    expect(noKey.status).toBe(400);
    const invalid = await call('POST', `/v1/payments/${paymentId}/refunds`, {
      token: admin,
      key: 'bad-body',
      body: { amount: { amount: 0, currency: 'usd' } },
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    const wrongCurrency = await refund(paymentId, 100, 'eur', admin, 'EUR');
    expect(wrongCurrency.status).toBe(422);
    expect(wrongCurrency.body).toMatchObject({ reason: 'currency_mismatch' });
    const unknown = await refund(paymentIdOf('ord_nobody'), 100, 'nobody');
    expect(unknown.status).toBe(404);
    // None of the refused requests changed anything.
    const [record] = await processorRecords(psp.url, paymentId);
    expect(record?.refundedAmount).toBe(0);
  });
});
