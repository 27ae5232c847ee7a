import { randomUUID } from 'node:crypto';
import { call, eventually, login, registerAndLogin, testStack } from '@bazaar/testing';
import { beforeAll, describe, expect, it } from 'vitest';

// The whole checkout saga through the public entry (edge → gateway → services), on the test
// stack's real servers: orders (FerretDB), payments (PostgreSQL) with psp-sandbox, RabbitMQ,
// notifications (MailDev) and analytics (DuckDB). Nothing is called on a service port except to
// read stock past the edge's catalog cache.

const stack = testStack();
const edge = stack.url('edge');
const orders = stack.url('orders');

interface Money {
  amount: number;
  currency: string;
}
interface Product {
  id: string;
  name: string;
  price: Money;
  stock: number;
}
interface Order {
  id: string;
  status: 'PENDING' | 'CONFIRMED' | 'CANCELLED';
  total: Money;
  cancelReason?: string;
}
interface Payment {
  id: string;
  orderId: string;
  status: string;
  amount: Money;
}
interface Summary {
  ordersConfirmed: number;
  ordersCancelled: number;
}

let buyer: Awaited<ReturnType<typeof registerAndLogin>>;
let adminToken = '';
let product: Product;

async function stockOf(productId: string): Promise<number> {
  const reply = await call<Product>(orders, 'GET', `/v1/products/${productId}`);
  expect(reply.status).toBe(200);
  return reply.body.stock;
}

async function placeOrder(token: string, quantity = 1) {
  const key = randomUUID();
  const body = { items: [{ productId: product.id, quantity }], payment: { token } };
  const reply = await call<Order>(edge, 'POST', '/v1/orders', {
    token: buyer.tokens.accessToken,
    headers: { 'idempotency-key': key },
    body,
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(202);
  expect(reply.body.status).toBe('PENDING');
  return { key, body, order: reply.body };
}

function orderReaches(id: string, status: Order['status']): Promise<Order> {
  return eventually(
    async () => {
      const reply = await call<Order>(edge, 'GET', `/v1/orders/${id}`, {
        token: buyer.tokens.accessToken,
      });
      return reply.body.status === status ? reply.body : undefined;
    },
    { timeoutMs: 45_000, what: `order ${id} ${status}` },
  );
}

function paymentReaches(orderId: string, status: string): Promise<Payment> {
  return eventually(
    async () => {
      const reply = await call<{ items: Payment[] }>(
        edge,
        'GET',
        `/v1/payments?orderId=${orderId}`,
        { token: buyer.tokens.accessToken },
      );
      return reply.body.items?.find((payment) => payment.status === status);
    },
    { timeoutMs: 45_000, what: `payment of ${orderId} ${status}` },
  );
}

async function summary(): Promise<Summary> {
  const reply = await call<Summary>(edge, 'GET', '/v1/analytics/summary', { token: adminToken });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body;
}

beforeAll(async () => {
  buyer = await registerAndLogin(edge);
  adminToken = (await login(edge, stack.admin)).accessToken;
  const catalog = await call<{ items: Product[] }>(edge, 'GET', '/v1/products?limit=50');
  expect(catalog.status).toBe(200);
  const inStock = catalog.body.items.filter((item) => item.stock >= 10);
  expect(inStock.length).toBeGreaterThan(0);
  product = inStock[0] as Product;
});

describe('checkout through the edge', () => {
  it('approves a good card: order CONFIRMED, payment captured, stock taken, email sent, counted', async () => {
    const before = await summary();
    const stockBefore = await stockOf(product.id);
    const { key, body, order } = await placeOrder('tok_visa', 2);
    expect(order.total).toEqual({
      amount: product.price.amount * 2,
      currency: product.price.currency,
    });

    // The same key and body: the stored first response, not a second order.
    const replay = await call<Order>(edge, 'POST', '/v1/orders', {
      token: buyer.tokens.accessToken,
      headers: { 'idempotency-key': key },
      body,
    });
    expect(replay.body.id).toBe(order.id);

    await orderReaches(order.id, 'CONFIRMED');
    const payment = await paymentReaches(order.id, 'CAPTURED');
    expect(payment.amount).toEqual(order.total);
    expect(await stockOf(product.id)).toBe(stockBefore - 2);

    const mail = await eventually(
      async () => {
        const reply = await fetch(`${stack.url('mail')}/api/email`);
        const emails = (await reply.json()) as { to: { address: string }[]; subject: string }[];
        return emails.find(
          (email) =>
            email.to.some((to) => to.address === buyer.email) && email.subject.includes(order.id),
        );
      },
      { timeoutMs: 30_000, what: `an email to ${buyer.email} about ${order.id}` },
    );
    expect(mail.subject).toMatch(/confirmed/i);
    const inbox = await call<{ items: unknown[] }>(edge, 'GET', '/v1/notifications', {
      token: buyer.tokens.accessToken,
    });
    expect(inbox.status).toBe(200);
    expect(inbox.body.items.length).toBeGreaterThan(0);

    await eventually(
      async () => ((await summary()).ordersConfirmed > before.ordersConfirmed ? true : undefined),
      { timeoutMs: 30_000, what: 'analytics counting the confirmed order' },
    );
  });

  it('cancels on a declined card, releases the stock and records the failed payment', async () => {
    const stockBefore = await stockOf(product.id);
    const { order } = await placeOrder('tok_chargeDeclined', 3);
    const cancelled = await orderReaches(order.id, 'CANCELLED');
    expect(cancelled.cancelReason).toBe('PAYMENT_DECLINED');
    await paymentReaches(order.id, 'FAILED');
    // The stock is released just after the status is stored, so it may lag the status a moment.
    await eventually(async () => ((await stockOf(product.id)) === stockBefore ? true : undefined), {
      what: `stock back to ${stockBefore}`,
    });
  });

  it('refunds a confirmed order the user cancels', async () => {
    const stockBefore = await stockOf(product.id);
    const { order } = await placeOrder('tok_visa', 1);
    await orderReaches(order.id, 'CONFIRMED');
    await paymentReaches(order.id, 'CAPTURED');
    const cancel = await call<Order>(edge, 'POST', `/v1/orders/${order.id}/cancel`, {
      token: buyer.tokens.accessToken,
    });
    expect(cancel.status, JSON.stringify(cancel.body)).toBeLessThan(300);
    const cancelled = await orderReaches(order.id, 'CANCELLED');
    expect(cancelled.cancelReason).toBe('USER_CANCELLED');
    await paymentReaches(order.id, 'REFUNDED');
    expect(await stockOf(product.id)).toBe(stockBefore);
  });

  it("hides another user's order and payments", async () => {
    const { order } = await placeOrder('tok_visa', 1);
    const stranger = await registerAndLogin(edge);
    const read = await call(edge, 'GET', `/v1/orders/${order.id}`, {
      token: stranger.tokens.accessToken,
    });
    expect(read.status).toBe(404);
    const payments = await call<{ items: Payment[] }>(
      edge,
      'GET',
      `/v1/payments?orderId=${order.id}`,
      { token: stranger.tokens.accessToken },
    );
    expect(payments.body.items ?? []).toEqual([]);
  });
});
