import { eventually } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  orderPlaced,
  paymentOf,
  processorRecords,
  type ChildService,
  type OrdersSide,
  type RunningPayments,
  paymentsTestScope,
  type PaymentsTestScope,
} from './payments.fixture';

// The processor goes down (a private psp-sandbox process, stopped): payments fail with
// PROCESSOR_UNAVAILABLE — so orders are cancelled with that reason — instead of waiting; the breaker
// opens, its half-open probe fails while the processor is still down (open again), and once the
// processor is back the next probe succeeds and closes it.

// Long enough that the "fails fast while open" test runs inside the open period on a loaded
// machine (the breaker last opened in the test before it).
const HALF_OPEN_MS = 8000;
let world: PaymentsTestScope;
let psp: ChildService;
let payments: RunningPayments;
let orders: OrdersSide;

beforeAll(async () => {
  world = await paymentsTestScope({
    paymentsEnv: {
      PSP_TIMEOUT_MS: '1s',
      PSP_MAX_ATTEMPTS: '2',
      PSP_BREAKER_FAILURES: '3',
      PSP_BREAKER_HALF_OPEN_MS: `${HALF_OPEN_MS}ms`,
      // An order whose authorization failed is failed at once, not redelivered: a redelivery
      // arriving after the open period would be a half-open probe that re-opens the breaker at a
      // moment no test chose.
      PAYMENTS_AUTHORIZE_MAX_ATTEMPTS: '1',
    },
  });
  ({ psp, payments, orders } = world);
});

afterAll(() => world?.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Attempts the processor client has made so far, from payments' own /metrics. */
async function processorAttempts(): Promise<number> {
  const text = await (await fetch(`${payments.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (
      line.startsWith('http_client_request_duration_seconds_count{') &&
      line.includes('psp-sandbox')
    ) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

describe('circuit breaker on the processor', () => {
  it('authorizes while the processor is up', async () => {
    const placed = orderPlaced();
    await orders.publish(placed);
    await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    expect(payments.processor.isAvailable).toBe(true);
  });

  it('fails payments as PROCESSOR_UNAVAILABLE while the processor is down, and opens', async () => {
    await psp.stop();
    const placed = Array.from({ length: 5 }, () => orderPlaced());
    await orders.publish(...placed);
    for (const order of placed) {
      const failed = await orders.waitFor('payment.failed.v1', order.data.orderId, 30_000);
      expect(failed.data.reason.code).toBe('PROCESSOR_UNAVAILABLE');
      expect(await paymentOf(payments.pool, order.data.orderId)).toMatchObject({
        status: 'FAILED',
        failure_code: 'PROCESSOR_UNAVAILABLE',
      });
    }
    expect(payments.processor.isAvailable).toBe(false);
  });

  it('fails a new order fast while open: the processor is not even called', async () => {
    const before = await processorAttempts();
    expect(before).toBeGreaterThan(0);
    const placed = orderPlaced();
    await orders.publish(placed);
    const failed = await orders.waitFor('payment.failed.v1', placed.data.orderId);
    expect(failed.data.reason.code).toBe('PROCESSOR_UNAVAILABLE');
    expect(await processorAttempts()).toBe(before);
    expect(payments.processor.isAvailable).toBe(false);
  });

  it('re-opens when the half-open probe fails (processor still down)', async () => {
    await sleep(HALF_OPEN_MS + 300);
    const before = await processorAttempts();
    const placed = orderPlaced();
    await orders.publish(placed);
    const failed = await orders.waitFor('payment.failed.v1', placed.data.orderId, 30_000);
    expect(failed.data.reason.code).toBe('PROCESSOR_UNAVAILABLE');
    // The probe did reach for the processor, failed, and opened the breaker again.
    expect(await processorAttempts()).toBeGreaterThan(before);
    expect(payments.processor.isAvailable).toBe(false);
  });

  it('closes after the processor returns: the probe succeeds and orders are authorized again', async () => {
    await psp.start();
    await sleep(HALF_OPEN_MS + 300);
    const placed = orderPlaced();
    await orders.publish(placed);
    const authorized = await orders.waitFor('payment.authorized.v1', placed.data.orderId, 30_000);
    expect(payments.processor.isAvailable).toBe(true);
    expect(await processorRecords(psp.url, authorized.data.paymentId)).toHaveLength(1);
    // And stays closed for the next ones.
    const next = orderPlaced();
    await orders.publish(next);
    await orders.waitFor('payment.authorized.v1', next.data.orderId);
    await eventually(() => (payments.processor.isAvailable ? true : undefined), {
      what: 'breaker closed',
    });
  });
});
