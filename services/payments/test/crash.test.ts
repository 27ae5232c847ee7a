import { eventually } from '@bazaar/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentIdOf } from '../src/payment';
import {
  createTestDatabase,
  expectLedgerConsistent,
  isolation,
  orderCancelled,
  orderConfirmed,
  orderPlaced,
  paymentsEnv,
  processorRecords,
  removeBrokerObjects,
  startChildService,
  startOrdersSide,
  startPsp,
  type ChildService,
  type OrdersSide,
  type TestDatabase,
} from './payments.fixture';

// kill -9 of payments at any point of the flow loses no event and charges nobody twice. payments
// runs as its built bundle (dist/main.mjs) in a child process; it is SIGKILLed repeatedly while it
// authorizes, captures and refunds, and restarted. At the end the processor's own record of
// authorizations, captures and refunds must match payments' books exactly, and every order must
// have got its events.

const ORDERS = 120;
const REFUNDED = 30;
const scope = isolation();
let database: TestDatabase;
let psp: ChildService;
let payments: ChildService;
let orders: OrdersSide;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  // A little processor latency keeps many payments in flight at every kill.
  psp = await startPsp({ PSP_SANDBOX_LATENCY_MS: '20ms' });
  payments = await startChildService('payments', {
    ...paymentsEnv(database.url, psp.url, scope),
    PAYMENTS_PREFETCH: '16',
    PAYMENTS_SWEEP_INTERVAL_MS: '1s',
  });
  orders = await startOrdersSide(scope);
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
});

afterAll(async () => {
  if (pool !== undefined) {
    await expectLedgerConsistent(pool);
    await pool.end();
  }
  await orders?.close();
  await payments?.stop();
  await psp?.stop();
  await removeBrokerObjects(scope);
  await database?.drop();
});

async function count(sql: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(sql);
  return Number(rows[0]?.n ?? 0);
}

/** SIGKILLs payments once `progress()` passes each threshold, restarting it each time. */
async function killWhile(progress: () => Promise<number>, thresholds: readonly number[]) {
  for (const threshold of thresholds) {
    await eventually(async () => ((await progress()) >= threshold ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 20,
      what: `progress ≥ ${threshold}`,
    });
    await payments.kill();
    await payments.start();
  }
}

function distinctEvents(type: string): Map<string, Set<string>> {
  const byOrder = new Map<string, Set<string>>();
  for (const event of orders.received) {
    if (event.type !== type) continue;
    const orderId = (event.data as { orderId: string }).orderId;
    const ids = byOrder.get(orderId) ?? new Set<string>();
    ids.add(event.id);
    byOrder.set(orderId, ids);
  }
  return byOrder;
}

describe('kill -9 of payments mid-flow', () => {
  const placed = Array.from({ length: ORDERS }, (_, index) =>
    orderPlaced({ amount: 1000 + index, currency: index % 3 === 0 ? 'EUR' : 'USD' }),
  );

  it('authorizes every order exactly once across kills', async () => {
    await orders.publish(...placed);
    await killWhile(
      () => count(`SELECT count(*) AS n FROM payments`),
      [5, Math.floor(ORDERS / 3), Math.floor((2 * ORDERS) / 3)],
    );
    await eventually(
      () => (distinctEvents('payment.authorized.v1').size === ORDERS ? true : undefined),
      { timeoutMs: 60_000, what: 'every order authorized' },
    );
    for (const [orderId, ids] of distinctEvents('payment.authorized.v1')) {
      expect(ids.size, orderId).toBe(1);
    }
    const records = await processorRecords(psp.url);
    expect(records).toHaveLength(ORDERS);
    expect(new Set(records.map((record) => record.reference)).size).toBe(ORDERS);
  });

  it('captures every confirmed order exactly once across kills', async () => {
    await orders.publish(
      ...placed.map((order) => orderConfirmed(order, paymentIdOf(order.data.orderId))),
    );
    await killWhile(
      () => count(`SELECT count(*) AS n FROM payments WHERE status = 'CAPTURED'`),
      [5, Math.floor(ORDERS / 2)],
    );
    await eventually(
      () => (distinctEvents('payment.captured.v1').size === ORDERS ? true : undefined),
      { timeoutMs: 60_000, what: 'every order captured' },
    );
    for (const ids of distinctEvents('payment.captured.v1').values()) expect(ids.size).toBe(1);
  });

  it('refunds cancelled orders exactly once across kills', async () => {
    await orders.publish(
      ...placed.slice(0, REFUNDED).map((order) => orderCancelled(order, 'USER_CANCELLED')),
    );
    await killWhile(() => count(`SELECT count(*) AS n FROM refunds`), [3, REFUNDED / 2]);
    await eventually(
      () => (distinctEvents('payment.refunded.v1').size === REFUNDED ? true : undefined),
      { timeoutMs: 60_000, what: 'every cancelled order refunded' },
    );
    for (const ids of distinctEvents('payment.refunded.v1').values()) expect(ids.size).toBe(1);
  });

  it("matches the processor's record of charges with payments' records exactly", async () => {
    const { rows } = await pool.query<{
      id: string;
      authorization_id: string;
      status: string;
      amount: string;
      captured_amount: string;
      refunded_amount: string;
    }>(
      `SELECT id, authorization_id, status, amount, captured_amount, refunded_amount FROM payments`,
    );
    expect(rows).toHaveLength(ORDERS);
    const records = new Map((await processorRecords(psp.url)).map((record) => [record.id, record]));
    expect(records.size).toBe(ORDERS);
    for (const payment of rows) {
      const record = records.get(payment.authorization_id);
      expect(record, payment.id).toBeDefined();
      expect(record?.reference).toBe(payment.id);
      expect(record?.amount.amount).toBe(Number(payment.amount));
      expect(record?.capturedAmount).toBe(Number(payment.captured_amount));
      expect(record?.refundedAmount).toBe(Number(payment.refunded_amount));
    }
    expect(rows.filter((payment) => payment.status === 'REFUNDED')).toHaveLength(REFUNDED);
    expect(rows.filter((payment) => payment.status === 'CAPTURED')).toHaveLength(ORDERS - REFUNDED);
  });
});
