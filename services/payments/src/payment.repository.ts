import { randomUUID } from 'node:crypto';
import type { Queryable } from './database';
import { storedLines, type LedgerEntry } from './ledger';
import type { FailureCode, Money, Payment, PaymentStatus } from './payment';

/** A refund as stored: one admin request (by Idempotency-Key) or one order cancellation. */
export interface Refund {
  readonly id: string;
  readonly paymentId: string;
  readonly idempotencyKey: string;
  readonly fingerprint: string;
  readonly amount: Money;
  readonly status: 'PENDING' | 'SUCCEEDED' | 'FAILED';
  readonly failure: { readonly code: string; readonly message: string } | null;
  readonly createdAt: Date;
}

export interface OrderCancellation {
  readonly orderId: string;
  readonly reason: string;
  readonly cancelledAt: Date;
}

/** What payments knows of an order: its payment and whether it was cancelled. */
export interface OrderState {
  readonly payment: Payment | undefined;
  readonly cancellation: OrderCancellation | undefined;
}

interface PaymentRow {
  id: string;
  order_id: string;
  user_id: string;
  currency: string;
  amount: string;
  status: PaymentStatus;
  authorization_id: string | null;
  failure_code: FailureCode | null;
  failure_message: string | null;
  captured_amount: string;
  refunded_amount: string;
  created_at: Date;
  updated_at: Date;
}

interface RefundRow {
  id: string;
  payment_id: string;
  idempotency_key: string;
  fingerprint: string;
  currency: string;
  amount: string;
  status: Refund['status'];
  failure_code: string | null;
  failure_message: string | null;
  created_at: Date;
}

const PAYMENT_COLUMNS = `id, order_id, user_id, currency, amount, status, authorization_id,
  failure_code, failure_message, captured_amount, refunded_amount, created_at, updated_at`;

function toPayment(row: PaymentRow): Payment {
  return {
    id: row.id,
    orderId: row.order_id,
    userId: row.user_id,
    amount: { amount: Number(row.amount), currency: row.currency },
    status: row.status,
    authorizationId: row.authorization_id,
    failure:
      row.failure_code === null
        ? null
        : { code: row.failure_code, message: row.failure_message ?? '' },
    capturedAmount: Number(row.captured_amount),
    refundedAmount: Number(row.refunded_amount),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toRefund(row: RefundRow): Refund {
  return {
    id: row.id,
    paymentId: row.payment_id,
    idempotencyKey: row.idempotency_key,
    fingerprint: row.fingerprint,
    amount: { amount: Number(row.amount), currency: row.currency },
    status: row.status,
    failure:
      row.failure_code === null
        ? null
        : { code: row.failure_code, message: row.failure_message ?? '' },
    createdAt: row.created_at,
  };
}

/** The only code that knows payments' tables. Every method runs on the client it is given. */
export interface PaymentRepository {
  findById(db: Queryable, id: string): Promise<Payment | undefined>;
  findByOrder(db: Queryable, orderId: string): Promise<Payment | undefined>;
  /** The payment and its order's cancellation in one round trip (before calling the processor). */
  findOrderState(db: Queryable, orderId: string): Promise<OrderState>;
  /** Reads the payment and locks its row until the transaction ends. */
  lockById(tx: Queryable, id: string): Promise<Payment | undefined>;
  /**
   * Serializes the transactions of one order (placement vs cancellation) even before any payment
   * row exists to lock.
   */
  lockOrder(tx: Queryable, orderId: string): Promise<void>;
  /** {@link findOrderState} of many orders in one round trip; every asked order id is in the map. */
  findOrderStates(db: Queryable, orderIds: readonly string[]): Promise<Map<string, OrderState>>;
  /** {@link lockOrder} of many orders, in one statement and a fixed (sorted) order. */
  lockOrders(tx: Queryable, orderIds: readonly string[]): Promise<void>;
  /** Payments by id in one round trip (absent ids are missing from the map). */
  findByIds(db: Queryable, ids: readonly string[]): Promise<Map<string, Payment>>;
  /** {@link lockById} of many payments, locked in id order. */
  lockByIds(tx: Queryable, ids: readonly string[]): Promise<Map<string, Payment>>;
  /**
   * Records that `consumer` applied these events (processed_events, as `handleOnce` does); returns
   * the ids recorded now — the others were applied before and must change nothing.
   */
  claimEvents(tx: Queryable, consumer: string, eventIds: readonly string[]): Promise<Set<string>>;
  insertMany(tx: Queryable, payments: readonly Payment[]): Promise<void>;
  updateMany(tx: Queryable, payments: readonly Payment[]): Promise<void>;
  /** {@link appendLedger} of many entries in one statement. */
  appendLedgers(
    tx: Queryable,
    entries: readonly { readonly paymentId: string; readonly entry: LedgerEntry }[],
  ): Promise<void>;
  findCancellation(db: Queryable, orderId: string): Promise<OrderCancellation | undefined>;
  /** Remembers a cancellation; false if it was already known. */
  recordCancellation(tx: Queryable, cancellation: OrderCancellation): Promise<boolean>;
  insert(tx: Queryable, payment: Payment): Promise<void>;
  update(tx: Queryable, payment: Payment): Promise<void>;
  appendLedger(tx: Queryable, paymentId: string, entry: LedgerEntry): Promise<void>;
  findRefund(db: Queryable, paymentId: string, idempotencyKey: string): Promise<Refund | undefined>;
  insertRefund(tx: Queryable, refund: Refund): Promise<void>;
  settleRefund(
    tx: Queryable,
    id: string,
    outcome: { status: 'SUCCEEDED' } | { status: 'FAILED'; code: string; message: string },
  ): Promise<boolean>;
  /** Amount of this payment's refunds still waiting for the processor. */
  pendingRefundTotal(tx: Queryable, paymentId: string): Promise<number>;
  /** Authorized payments whose order is cancelled: holds that must be voided. */
  findAuthorizedOfCancelledOrders(db: Queryable, limit: number): Promise<Payment[]>;
}

export function createPaymentRepository(): PaymentRepository {
  return {
    async findById(db, id) {
      const { rows } = await db.query<PaymentRow>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = $1`,
        [id],
      );
      return rows[0] === undefined ? undefined : toPayment(rows[0]);
    },
    async findByOrder(db, orderId) {
      const { rows } = await db.query<PaymentRow>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE order_id = $1`,
        [orderId],
      );
      return rows[0] === undefined ? undefined : toPayment(rows[0]);
    },
    async findOrderState(db, orderId) {
      const { rows } = await db.query<{
        payment: PaymentRow | null;
        cancellation: { reason: string; cancelled_at: string } | null;
      }>(
        `SELECT
           (SELECT row_to_json(p) FROM (SELECT ${PAYMENT_COLUMNS} FROM payments WHERE order_id = $1) p) AS payment,
           (SELECT row_to_json(c) FROM (SELECT reason, cancelled_at FROM order_cancellations WHERE order_id = $1) c) AS cancellation`,
        [orderId],
      );
      const row = rows[0];
      const payment =
        row?.payment == null
          ? undefined
          : toPayment({
              ...row.payment,
              created_at: new Date(row.payment.created_at),
              updated_at: new Date(row.payment.updated_at),
            });
      const cancellation =
        row?.cancellation == null
          ? undefined
          : {
              orderId,
              reason: row.cancellation.reason,
              cancelledAt: new Date(row.cancellation.cancelled_at),
            };
      return { payment, cancellation };
    },
    async lockById(tx, id) {
      const { rows } = await tx.query<PaymentRow>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = $1 FOR UPDATE`,
        [id],
      );
      return rows[0] === undefined ? undefined : toPayment(rows[0]);
    },
    async lockOrder(tx, orderId) {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 7301))`, [orderId]);
    },
    async findOrderStates(db, orderIds) {
      const states = new Map<string, OrderState>();
      for (const orderId of orderIds)
        states.set(orderId, { payment: undefined, cancellation: undefined });
      if (orderIds.length === 0) return states;
      const [payments, cancellations] = await Promise.all([
        db.query<PaymentRow>(
          `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE order_id = ANY($1::text[])`,
          [orderIds],
        ),
        db.query<{ order_id: string; reason: string; cancelled_at: Date }>(
          `SELECT order_id, reason, cancelled_at FROM order_cancellations WHERE order_id = ANY($1::text[])`,
          [orderIds],
        ),
      ]);
      const cancelled = new Map(
        cancellations.rows.map((row) => [
          row.order_id,
          { orderId: row.order_id, reason: row.reason, cancelledAt: row.cancelled_at },
        ]),
      );
      const paid = new Map(payments.rows.map((row) => [row.order_id, toPayment(row)]));
      for (const orderId of orderIds) {
        states.set(orderId, { payment: paid.get(orderId), cancellation: cancelled.get(orderId) });
      }
      return states;
    },
    async lockOrders(tx, orderIds) {
      if (orderIds.length === 0) return;
      // Sorted and in array order (unnest keeps it): two batches lock shared orders in the same
      // order, so they wait for each other instead of deadlocking.
      const sorted = [...new Set(orderIds)].sort();
      await tx.query(
        `SELECT count(pg_advisory_xact_lock(hashtextextended(o, 7301))) FROM unnest($1::text[]) AS o`,
        [sorted],
      );
    },
    async findByIds(db, ids) {
      if (ids.length === 0) return new Map();
      const { rows } = await db.query<PaymentRow>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = ANY($1::text[])`,
        [ids],
      );
      return new Map(rows.map((row) => [row.id, toPayment(row)]));
    },
    async lockByIds(tx, ids) {
      if (ids.length === 0) return new Map();
      const { rows } = await tx.query<PaymentRow>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
        [[...new Set(ids)].sort()],
      );
      return new Map(rows.map((row) => [row.id, toPayment(row)]));
    },
    async claimEvents(tx, consumer, eventIds) {
      if (eventIds.length === 0) return new Set();
      const { rows } = await tx.query<{ event_id: string }>(
        `INSERT INTO processed_events (consumer, event_id)
         SELECT $1, e FROM unnest($2::text[]) AS e ORDER BY e
         ON CONFLICT DO NOTHING RETURNING event_id`,
        [consumer, [...new Set(eventIds)]],
      );
      return new Set(rows.map((row) => row.event_id));
    },
    async insertMany(tx, payments) {
      if (payments.length === 0) return;
      await tx.query(
        `INSERT INTO payments (id, order_id, user_id, currency, amount, status, authorization_id,
           failure_code, failure_message, captured_amount, refunded_amount, created_at, updated_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
           $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::timestamptz[],
           $13::timestamptz[])`,
        [
          payments.map((p) => p.id),
          payments.map((p) => p.orderId),
          payments.map((p) => p.userId),
          payments.map((p) => p.amount.currency),
          payments.map((p) => p.amount.amount),
          payments.map((p) => p.status),
          payments.map((p) => p.authorizationId),
          payments.map((p) => p.failure?.code ?? null),
          payments.map((p) => p.failure?.message ?? null),
          payments.map((p) => p.capturedAmount),
          payments.map((p) => p.refundedAmount),
          payments.map((p) => p.createdAt),
          payments.map((p) => p.updatedAt),
        ],
      );
    },
    async updateMany(tx, payments) {
      if (payments.length === 0) return;
      await tx.query(
        `UPDATE payments SET status = u.status, authorization_id = u.authorization_id,
           captured_amount = u.captured_amount, refunded_amount = u.refunded_amount,
           updated_at = u.updated_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[])
           AS u(id, status, authorization_id, captured_amount, refunded_amount, updated_at)
         WHERE payments.id = u.id`,
        [
          payments.map((p) => p.id),
          payments.map((p) => p.status),
          payments.map((p) => p.authorizationId),
          payments.map((p) => p.capturedAmount),
          payments.map((p) => p.refundedAmount),
          payments.map((p) => p.updatedAt),
        ],
      );
    },
    async appendLedgers(tx, entries) {
      const transactions: { id: string; paymentId: string; kind: string }[] = [];
      const lines: { transactionId: string; account: string; currency: string; amount: number }[] =
        [];
      for (const { paymentId, entry } of entries) {
        const stored = storedLines(entry);
        if (stored.length === 0) continue;
        const id = `ltx_${randomUUID()}`;
        transactions.push({ id, paymentId, kind: entry.kind });
        for (const storedLine of stored) lines.push({ transactionId: id, ...storedLine });
      }
      if (transactions.length === 0) return;
      // One statement for every transaction and line: the balance trigger checks each at commit.
      await tx.query(
        `WITH t AS (
           INSERT INTO ledger_transactions (id, payment_id, kind)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) RETURNING id
         )
         INSERT INTO ledger_lines (transaction_id, account, currency, amount)
         SELECT l.transaction_id, l.account, l.currency, l.amount
         FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[])
           AS l(transaction_id, account, currency, amount)
         JOIN t ON t.id = l.transaction_id`,
        [
          transactions.map((t) => t.id),
          transactions.map((t) => t.paymentId),
          transactions.map((t) => t.kind),
          lines.map((l) => l.transactionId),
          lines.map((l) => l.account),
          lines.map((l) => l.currency),
          lines.map((l) => l.amount),
        ],
      );
    },
    async findCancellation(db, orderId) {
      const { rows } = await db.query<{ reason: string; cancelled_at: Date }>(
        `SELECT reason, cancelled_at FROM order_cancellations WHERE order_id = $1`,
        [orderId],
      );
      const row = rows[0];
      return row === undefined
        ? undefined
        : { orderId, reason: row.reason, cancelledAt: row.cancelled_at };
    },
    async recordCancellation(tx, cancellation) {
      const result = await tx.query(
        `INSERT INTO order_cancellations (order_id, reason, cancelled_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING`,
        [cancellation.orderId, cancellation.reason, cancellation.cancelledAt],
      );
      return result.rowCount === 1;
    },
    async insert(tx, payment) {
      await tx.query(
        `INSERT INTO payments (id, order_id, user_id, currency, amount, status, authorization_id,
           failure_code, failure_message, captured_amount, refunded_amount, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          payment.id,
          payment.orderId,
          payment.userId,
          payment.amount.currency,
          payment.amount.amount,
          payment.status,
          payment.authorizationId,
          payment.failure?.code ?? null,
          payment.failure?.message ?? null,
          payment.capturedAmount,
          payment.refundedAmount,
          payment.createdAt,
          payment.updatedAt,
        ],
      );
    },
    async update(tx, payment) {
      await tx.query(
        `UPDATE payments SET status = $2, authorization_id = $3, captured_amount = $4,
           refunded_amount = $5, updated_at = $6
         WHERE id = $1`,
        [
          payment.id,
          payment.status,
          payment.authorizationId,
          payment.capturedAmount,
          payment.refundedAmount,
          payment.updatedAt,
        ],
      );
    },
    async appendLedger(tx, paymentId, entry) {
      const lines = storedLines(entry);
      if (lines.length === 0) return;
      // One statement for the transaction and all its lines: the balance trigger checks at commit.
      await tx.query(
        `WITH t AS (
           INSERT INTO ledger_transactions (id, payment_id, kind) VALUES ($1, $2, $3) RETURNING id
         )
         INSERT INTO ledger_lines (transaction_id, account, currency, amount)
         SELECT t.id, l.account, l.currency, l.amount
         FROM t, unnest($4::text[], $5::text[], $6::bigint[]) AS l(account, currency, amount)`,
        [
          `ltx_${randomUUID()}`,
          paymentId,
          entry.kind,
          lines.map((line) => line.account),
          lines.map((line) => line.currency),
          lines.map((line) => line.amount),
        ],
      );
    },
    async findRefund(db, paymentId, idempotencyKey) {
      const { rows } = await db.query<RefundRow>(
        `SELECT * FROM refunds WHERE payment_id = $1 AND idempotency_key = $2`,
        [paymentId, idempotencyKey],
      );
      return rows[0] === undefined ? undefined : toRefund(rows[0]);
    },
    async insertRefund(tx, refund) {
      await tx.query(
        `INSERT INTO refunds (id, payment_id, idempotency_key, fingerprint, currency, amount, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
        [
          refund.id,
          refund.paymentId,
          refund.idempotencyKey,
          refund.fingerprint,
          refund.amount.currency,
          refund.amount.amount,
          refund.status,
          refund.createdAt,
        ],
      );
    },
    async settleRefund(tx, id, outcome) {
      const result = await tx.query(
        `UPDATE refunds SET status = $2, failure_code = $3, failure_message = $4, updated_at = now()
         WHERE id = $1 AND status = 'PENDING'`,
        [
          id,
          outcome.status,
          outcome.status === 'FAILED' ? outcome.code : null,
          outcome.status === 'FAILED' ? outcome.message : null,
        ],
      );
      return result.rowCount === 1;
    },
    async pendingRefundTotal(tx, paymentId) {
      const { rows } = await tx.query<{ total: string }>(
        `SELECT coalesce(sum(amount), 0) AS total FROM refunds WHERE payment_id = $1 AND status = 'PENDING'`,
        [paymentId],
      );
      return Number(rows[0]?.total ?? 0);
    },
    async findAuthorizedOfCancelledOrders(db, limit) {
      const { rows } = await db.query<PaymentRow>(
        `SELECT p.*
         FROM payments p JOIN order_cancellations c ON c.order_id = p.order_id
         WHERE p.status = 'AUTHORIZED' ORDER BY p.updated_at LIMIT $1`,
        [limit],
      );
      return rows.map(toPayment);
    },
  };
}

/** What the ledger check found wrong; empty when every invariant holds. */
export interface LedgerViolation {
  readonly invariant: string;
  readonly detail: string;
}

/**
 * The ledger's invariants, checked in SQL over the whole database (tests run it after their suite;
 * operators can run it any time):
 * 1. every ledger transaction sums to zero per currency;
 * 2. per currency, −balance(sales) = Σ (captured − refunded) over payments — the paid orders' totals;
 * 3. per currency, balance(card_authorizations) = Σ amount of AUTHORIZED payments (open holds);
 * 4. per payment, refunded ≤ captured, and the succeeded refunds add up to refunded.
 */
export async function findLedgerViolations(db: Queryable): Promise<LedgerViolation[]> {
  const violations: LedgerViolation[] = [];
  const unbalanced = await db.query<{ transaction_id: string; currency: string; sum: string }>(
    `SELECT transaction_id, currency, sum(amount) AS sum FROM ledger_lines
     GROUP BY transaction_id, currency HAVING sum(amount) <> 0`,
  );
  for (const row of unbalanced.rows) {
    violations.push({
      invariant: 'transaction balances',
      detail: `${row.transaction_id} ${row.currency} sums to ${row.sum}`,
    });
  }
  const sales = await db.query<{ currency: string; ledger: string; payments: string }>(
    `WITH l AS (
       SELECT currency, -sum(amount) AS total FROM ledger_lines WHERE account = 'sales' GROUP BY currency
     ), p AS (
       SELECT currency, sum(captured_amount - refunded_amount) AS total FROM payments GROUP BY currency
     )
     SELECT coalesce(l.currency, p.currency) AS currency, coalesce(l.total, 0) AS ledger,
            coalesce(p.total, 0) AS payments
     FROM l FULL JOIN p ON l.currency = p.currency
     WHERE coalesce(l.total, 0) <> coalesce(p.total, 0)`,
  );
  for (const row of sales.rows) {
    violations.push({
      invariant: 'captured − refunded = sales',
      detail: `${row.currency}: ledger ${row.ledger}, payments ${row.payments}`,
    });
  }
  const holds = await db.query<{ currency: string; ledger: string; payments: string }>(
    `WITH l AS (
       SELECT currency, sum(amount) AS total FROM ledger_lines WHERE account = 'card_authorizations'
       GROUP BY currency
     ), p AS (
       SELECT currency, sum(amount) AS total FROM payments WHERE status = 'AUTHORIZED' GROUP BY currency
     )
     SELECT coalesce(l.currency, p.currency) AS currency, coalesce(l.total, 0) AS ledger,
            coalesce(p.total, 0) AS payments
     FROM l FULL JOIN p ON l.currency = p.currency
     WHERE coalesce(l.total, 0) <> coalesce(p.total, 0)`,
  );
  for (const row of holds.rows) {
    violations.push({
      invariant: 'open holds = authorized payments',
      detail: `${row.currency}: ledger ${row.ledger}, payments ${row.payments}`,
    });
  }
  const refunds = await db.query<{ id: string; refunded: string; succeeded: string }>(
    `SELECT p.id, p.refunded_amount AS refunded, coalesce(sum(r.amount), 0) AS succeeded
     FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id AND r.status = 'SUCCEEDED'
     GROUP BY p.id
     HAVING p.refunded_amount <> coalesce(sum(r.amount), 0) OR p.refunded_amount > p.captured_amount`,
  );
  for (const row of refunds.rows) {
    violations.push({
      invariant: 'refunds add up',
      detail: `${row.id}: refunded ${row.refunded}, succeeded refunds ${row.succeeded}`,
    });
  }
  return violations;
}
