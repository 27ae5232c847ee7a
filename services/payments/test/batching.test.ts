import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openDeadLetterAdmin } from '@bazaar/event-bus';
import { eventually, testStack } from '@bazaar/testing';
import { paymentIdOf } from '../src/payment';
import {
  orderConfirmed,
  orderPlaced,
  outboxTypesOf,
  paymentOf,
  paymentsTestScope,
  type OrdersSide,
  type PaymentsTestScope,
  type RunningPayments,
} from './payments.fixture';

// Many deliveries recorded in one PostgreSQL transaction (ADR 0009): every message is acked only
// after the commit that holds its record, and one bad record fails only its own message.

let world: PaymentsTestScope;
let payments: RunningPayments;
let orders: OrdersSide;

beforeAll(async () => {
  world = await paymentsTestScope({
    // One batch at a time, and a poisoned delivery is dead-lettered at its first failure.
    paymentsEnv: { PAYMENTS_BATCH_CONCURRENCY: '1', PAYMENTS_AUTHORIZE_MAX_ATTEMPTS: '1' },
  });
  ({ payments, orders } = world);
});

// Includes the SQL check of the ledger invariants over everything this file did.
afterAll(() => world?.close());

/** A counter of payments' own /metrics, summed over the series whose labels include `labels`. */
async function metric(name: string, labels: readonly string[]): Promise<number> {
  const text = await (await fetch(`${payments.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && labels.every((label) => line.includes(label))) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

/**
 * Holds an order's advisory lock (the one payments takes per order while recording) in a
 * transaction of its own, so the batch holding that order waits and the next deliveries gather.
 */
async function holdOrderLock(orderId: string): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: world.database.url });
  await client.connect();
  await client.query('BEGIN');
  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 7301))`, [orderId]);
  return {
    async release() {
      await client.query('COMMIT');
      await client.end();
    },
  };
}

/** Waits until payments' connection blocks on an advisory lock. */
async function waitForLockWait(): Promise<void> {
  await eventually(async () => {
    const { rows } = await payments.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'payments'
         AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
    );
    expect(Number(rows[0]?.n)).toBe(1);
    return true;
  });
}

describe('authorizations recorded in batches', () => {
  it('commits the other deliveries of a batch holding a poisoned one, and dead-letters only that one', async () => {
    const first = orderPlaced();
    const lock = await holdOrderLock(first.data.orderId);
    let isReleased = false;
    try {
      await orders.publish(first);
      await waitForLockWait();

      // The poisoned order: a row already holds its payment id (for another order), so inserting
      // its payment violates the primary key — the whole multi-row insert fails with it.
      const poisoned = orderPlaced();
      await payments.pool.query(
        `INSERT INTO payments (id, order_id, user_id, currency, amount, status, failure_code, failure_message)
         VALUES ($1, $2, 'usr_squatter', 'USD', 100, 'FAILED', 'CARD_DECLINED', 'squatter')`,
        [paymentIdOf(poisoned.data.orderId), `${poisoned.data.orderId}-other`],
      );
      const healthy = Array.from({ length: 12 }, () => orderPlaced());
      await orders.publish(...healthy.slice(0, 6), poisoned, ...healthy.slice(6));
      // The first order's batch waits for the lock; the others were decided by the processor and
      // wait for the next batch (one batch at a time).
      await eventually(() => payments.payments.service.pendingRecords === 14 || undefined);
      const splitBefore = await metric('payments_record_batches_total', ['outcome="split"']);
      await lock.release();
      isReleased = true;

      for (const placed of [first, ...healthy]) {
        const event = await orders.waitFor('payment.authorized.v1', placed.data.orderId);
        expect(event.data.paymentId).toBe(paymentIdOf(placed.data.orderId));
        expect(await paymentOf(payments.pool, placed.data.orderId)).toMatchObject({
          status: 'AUTHORIZED',
        });
      }
      // The batch of the 13 failed as a whole and was re-run one by one.
      expect(await metric('payments_record_batches_total', ['outcome="split"'])).toBe(
        splitBefore + 1,
      );
      const admin = await openDeadLetterAdmin(testStack().rabbitmq);
      try {
        await eventually(async () => {
          const dead = await admin.list(`${world.scope.groupPrefix}.order-placed`);
          expect(dead.map((letter) => letter.eventId)).toEqual([poisoned.id]);
          expect(dead[0]?.error).toContain('duplicate key');
          return true;
        });
      } finally {
        await admin.close();
      }
      // Nothing of the poisoned order was recorded, and nothing was published for it.
      expect(await paymentOf(payments.pool, poisoned.data.orderId)).toBeUndefined();
      expect(orders.eventsOf(poisoned.data.orderId)).toEqual([]);
      const { rows } = await payments.pool.query(
        `SELECT 1 FROM processed_events WHERE event_id = $1`,
        [poisoned.id],
      );
      expect(rows).toEqual([]);
    } finally {
      if (!isReleased) await lock.release();
    }
  });

  it('records a duplicate delivery in the same batch once', async () => {
    const placed = orderPlaced();
    await orders.publish(placed, placed, placed);
    await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    const paymentId = paymentIdOf(placed.data.orderId);
    await eventually(async () => {
      const { rows } = await payments.pool.query(
        `SELECT 1 FROM processed_events WHERE event_id = $1`,
        [placed.id],
      );
      expect(rows).toHaveLength(1);
      return true;
    });
    expect(await outboxTypesOf(payments.pool, paymentId)).toEqual(['payment.authorized.v1']);
  });

  it('captures many confirmed orders, each once, with one balanced capture each', async () => {
    const placedOrders = Array.from({ length: 10 }, () => orderPlaced());
    await orders.publish(...placedOrders);
    for (const placed of placedOrders) {
      await orders.waitFor('payment.authorized.v1', placed.data.orderId);
    }
    const confirmations = placedOrders.map((placed) =>
      orderConfirmed(placed, paymentIdOf(placed.data.orderId)),
    );
    // Each confirmation twice: the second copy must change nothing.
    await orders.publish(...confirmations, ...confirmations);
    for (const placed of placedOrders) {
      const captured = await orders.waitFor('payment.captured.v1', placed.data.orderId);
      expect(captured.data.amount).toEqual(placed.data.total);
    }
    await eventually(async () => {
      const { rows } = await payments.pool.query<{ event_id: string }>(
        `SELECT event_id FROM processed_events WHERE event_id = ANY($1::text[])`,
        [confirmations.map((event) => event.id)],
      );
      expect(rows).toHaveLength(confirmations.length);
      return true;
    });
    for (const placed of placedOrders) {
      const paymentId = paymentIdOf(placed.data.orderId);
      expect(await paymentOf(payments.pool, placed.data.orderId)).toMatchObject({
        status: 'CAPTURED',
        captured_amount: String(placed.data.total.amount),
      });
      expect(await outboxTypesOf(payments.pool, paymentId)).toEqual([
        'payment.authorized.v1',
        'payment.captured.v1',
      ]);
      const { rows } = await payments.pool.query(
        `SELECT 1 FROM ledger_transactions WHERE payment_id = $1 AND kind = 'capture'`,
        [paymentId],
      );
      expect(rows).toHaveLength(1);
    }
  });
});
