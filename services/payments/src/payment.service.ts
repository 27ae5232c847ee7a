import { createHash } from 'node:crypto';
import {
  createEvent,
  type OrderCancelledV1,
  type OrderConfirmedV1,
  type OrderPlacedV1,
} from '@bazaar/contracts';
import { enqueueEvents, handleOnce, type BusEvent } from '@bazaar/event-bus';
import type { Logger } from '@bazaar/logging';
import type { Meter } from '@opentelemetry/api';
import type pg from 'pg';
import { inTransaction, type Queryable } from './database';
import {
  idempotencyKeyInUse,
  idempotencyKeyReused,
  paymentNotFound,
  paymentRefused,
  processorRefusedRefund,
  processorUnavailable,
} from './errors';
import { createBatcher } from './batcher';
import {
  authorizationEntry,
  captureEntry,
  refundEntry,
  voidEntry,
  type LedgerEntry,
} from './ledger';
import {
  authorized,
  capture,
  checkRefund,
  paymentIdOf,
  processorKeyOf,
  refund as refundPayment,
  refundableAmount,
  refundIdOf,
  unauthorized,
  voidPayment,
  type FailureCode,
  type Money,
  type Payment,
} from './payment';
import type { OrderState, PaymentRepository, Refund } from './payment.repository';
import { ProcessorUnavailableError, type PaymentProcessor } from './processor';

/** Consumer groups (RabbitMQ queues and `processed_events.consumer`). */
export const consumerGroups = {
  orderPlaced: 'payments.order-placed',
  orderConfirmed: 'payments.order-confirmed',
  orderCancelled: 'payments.order-cancelled',
} as const;

/** How a message reached the handler (from the event bus). */
export interface Delivery {
  readonly attempt: number;
  readonly redelivered: boolean;
}

export interface PaymentServiceDeps {
  readonly pool: pg.Pool;
  readonly repository: PaymentRepository;
  readonly processor: PaymentProcessor;
  readonly logger: Logger;
  readonly meter: Meter;
  /** Deliveries of one order.placed.v1 with an unknown processor outcome before failing it. */
  readonly authorizeMaxAttempts: number;
  /**
   * Deliveries whose records share one transaction at most (and lookups per query); default 64.
   * A batch is whatever arrived while the previous one was being committed.
   */
  readonly batchSize?: number;
  /** Transactions of one kind (authorizations, captures) in flight at once; default 2. */
  readonly batchConcurrency?: number;
  readonly now?: () => Date;
}

/** Who asks, as `@bazaar/auth` tells. */
export interface Principal {
  readonly userId: string;
  readonly roles: readonly string[];
}

export interface PaymentService {
  /** Authorizations and captures decided and waiting for (or in) their batch's transaction. */
  readonly pendingRecords: number;
  /** order.placed.v1: authorize the total, record payment + ledger + event in one transaction. */
  authorizeOrder(event: OrderPlacedV1, delivery: Delivery): Promise<void>;
  /** order.confirmed.v1: capture the authorized payment. */
  captureOrder(event: OrderConfirmedV1): Promise<void>;
  /** order.cancelled.v1: remember it; void an authorization, refund a capture. */
  cancelOrder(event: OrderCancelledV1): Promise<void>;
  /** Voids authorizations of cancelled orders left by a race or a crash; returns how many. */
  voidCancelledAuthorizations(limit?: number): Promise<number>;
  /** An admin refund, idempotent by `idempotencyKey`. */
  refund(input: {
    paymentId: string;
    amount: Money;
    idempotencyKey: string;
  }): Promise<{ refund: Refund; isReplay: boolean }>;
  /** The payments of an order the principal may see (its owner or an admin). */
  listByOrder(orderId: string, principal: Principal): Promise<Payment[]>;
}

const SOURCE = '/payments';

function fingerprintOf(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

type AuthorizationDecision =
  | { readonly kind: 'authorized'; readonly authorizationId: string }
  | { readonly kind: 'failed'; readonly code: FailureCode; readonly message: string }
  | { readonly kind: 'cancelled' };

/** One delivery's processor decision, waiting to be recorded. */
interface AuthorizationRecord {
  readonly event: OrderPlacedV1;
  readonly paymentId: string;
  readonly decision: AuthorizationDecision;
}

/** One order.confirmed.v1 whose payment the processor captured, waiting to be recorded. */
interface CaptureRecord {
  readonly eventId: string;
  readonly paymentId: string;
}

const UNAVAILABLE_MESSAGE = 'The card processor could not be reached; no money was taken.';

export function createPaymentService(deps: PaymentServiceDeps): PaymentService {
  const { pool, repository, processor, logger, authorizeMaxAttempts } = deps;
  const batchSize = deps.batchSize ?? 64;
  const batchConcurrency = deps.batchConcurrency ?? 2;
  const now = deps.now ?? (() => new Date());
  const outcomes = deps.meter.createCounter('payments.operations', {
    description: 'Payment operations by kind and outcome.',
  });
  const batchCounter = deps.meter.createCounter('payments.record_batches', {
    description:
      'Transactions recording several deliveries, by kind and outcome (committed, or split: failed and re-run one by one).',
  });
  const batchedRecords = deps.meter.createHistogram('payments.record_batch_size', {
    description: 'Deliveries recorded per transaction.',
    advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256] },
  });

  function moneyOf(payment: Payment): Money {
    return { amount: payment.amount.amount, currency: payment.amount.currency };
  }

  async function recordVoid(tx: Queryable, payment: Payment): Promise<boolean> {
    const at = now();
    const result = voidPayment(payment, at);
    if (!result.ok) return false;
    await repository.update(tx, result.payment);
    await repository.appendLedger(tx, payment.id, voidEntry(payment.amount));
    await enqueueEvents(tx, [
      createEvent('payment.voided.v1', {
        source: SOURCE,
        subject: payment.id,
        data: {
          paymentId: payment.id,
          orderId: payment.orderId,
          userId: payment.userId,
          amount: moneyOf(payment),
          authorizationId: payment.authorizationId ?? '',
          voidedAt: at.toISOString(),
        },
      }),
    ]);
    outcomes.add(1, { operation: 'void', outcome: 'voided' });
    return true;
  }

  async function recordRefund(
    tx: Queryable,
    payment: Payment,
    refund: Refund,
  ): Promise<Payment | undefined> {
    const at = now();
    const result = refundPayment(payment, refund.amount, at);
    if (!result.ok) return undefined;
    await repository.update(tx, result.payment);
    await repository.appendLedger(tx, payment.id, refundEntry(refund.amount));
    await enqueueEvents(tx, [
      createEvent('payment.refunded.v1', {
        source: SOURCE,
        subject: payment.id,
        data: {
          paymentId: payment.id,
          orderId: payment.orderId,
          userId: payment.userId,
          refundId: refund.id,
          amount: refund.amount,
          totalRefunded: {
            amount: result.payment.refundedAmount,
            currency: refund.amount.currency,
          },
          refundedAt: at.toISOString(),
        },
      }),
    ]);
    outcomes.add(1, { operation: 'refund', outcome: 'refunded' });
    return result.payment;
  }

  /** Voids one authorized payment at the processor, then records it. */
  async function voidAuthorized(paymentId: string): Promise<boolean> {
    const payment = await repository.findById(pool, paymentId);
    if (payment?.status !== 'AUTHORIZED' || payment.authorizationId === null) return false;
    const result = await processor.void({
      authorizationId: payment.authorizationId,
      idempotencyKey: processorKeyOf(payment.id, 'void'),
    });
    if (result.kind === 'refused') {
      throw new Error(`the processor refused to void ${payment.id}: ${result.reason}`);
    }
    return inTransaction(pool, async (tx) => {
      const locked = await repository.lockById(tx, paymentId);
      return locked === undefined ? false : recordVoid(tx, locked);
    });
  }

  async function decideAuthorization(
    event: OrderPlacedV1,
    paymentId: string,
    isCancelled: boolean,
    delivery: Delivery,
  ): Promise<AuthorizationDecision> {
    const isFirstDelivery = delivery.attempt === 1 && !delivery.redelivered;
    // Cancelled before we got to it, and no earlier delivery can have reached the processor.
    if (isCancelled && isFirstDelivery) return { kind: 'cancelled' };
    try {
      const result = await processor.authorize({
        token: event.data.paymentToken,
        amount: event.data.total,
        reference: paymentId,
        idempotencyKey: processorKeyOf(paymentId, 'authorize'),
      });
      return result.kind === 'approved'
        ? { kind: 'authorized', authorizationId: result.authorizationId }
        : { kind: 'failed', code: result.code, message: result.message };
    } catch (error) {
      if (!(error instanceof ProcessorUnavailableError)) throw error;
      // Fail fast when the breaker is open and nothing can have reached the processor for this
      // order yet; otherwise an earlier attempt may have been approved there: retry with the same key
      // (the bus redelivers after a delay) until the budget or the order's deadline is spent.
      const isBudgetSpent =
        delivery.attempt >= authorizeMaxAttempts ||
        now().getTime() >= Date.parse(event.data.deadline);
      if ((error.isCircuitOpen && isFirstDelivery) || isBudgetSpent) {
        logger.warn(
          { orderId: event.data.orderId, paymentId, attempt: delivery.attempt, err: error },
          'processor unavailable: failing the payment',
        );
        return { kind: 'failed', code: 'PROCESSOR_UNAVAILABLE', message: UNAVAILABLE_MESSAGE };
      }
      throw error;
    }
  }

  /**
   * Records the processor's decisions of many order.placed.v1 deliveries in ONE transaction: the
   * orders' advisory locks (sorted), the events' dedupe rows, the orders' state, then multi-row
   * inserts of payments, ledger lines and outbox rows, and one commit (one WAL flush) for all.
   * Per item it is exactly what one delivery's own transaction did; a batch that fails is re-run
   * item by item by the batcher, so a bad row fails only its own delivery.
   */
  async function recordAuthorizations(
    items: readonly AuthorizationRecord[],
  ): Promise<{ mustVoid: boolean }[]> {
    const counted: string[] = [];
    const results = await inTransaction(pool, async (tx) => {
      await repository.lockOrders(
        tx,
        items.map((item) => item.event.data.orderId),
      );
      const fresh = await repository.claimEvents(
        tx,
        consumerGroups.orderPlaced,
        items.map((item) => item.event.id),
      );
      const states = await repository.findOrderStates(
        tx,
        items.filter((item) => fresh.has(item.event.id)).map((item) => item.event.data.orderId),
      );
      const inserts: Payment[] = [];
      const ledger: { paymentId: string; entry: LedgerEntry }[] = [];
      const events: BusEvent[] = [];
      const recorded = new Set<string>();
      const decided = items.map((item) => {
        const { event, paymentId, decision } = item;
        const { orderId, userId, total } = event.data;
        // A duplicate delivery, or another event of the same order earlier in this batch.
        if (!fresh.has(event.id) || recorded.has(orderId)) return { mustVoid: false };
        const state = states.get(orderId);
        if (state?.payment !== undefined) return { mustVoid: false };
        recorded.add(orderId);
        const at = now();
        if (decision.kind === 'cancelled') {
          inserts.push(
            unauthorized({
              id: paymentId,
              orderId,
              userId,
              amount: total,
              status: 'CANCELLED',
              failure: null,
              at,
            }),
          );
          counted.push('cancelled');
          return { mustVoid: false };
        }
        if (decision.kind === 'failed') {
          inserts.push(
            unauthorized({
              id: paymentId,
              orderId,
              userId,
              amount: total,
              status: 'FAILED',
              failure: { code: decision.code, message: decision.message },
              at,
            }),
          );
          events.push(
            createEvent('payment.failed.v1', {
              source: SOURCE,
              subject: paymentId,
              data: {
                paymentId,
                orderId,
                userId,
                amount: total,
                reason: { code: decision.code, message: decision.message },
                failedAt: at.toISOString(),
              },
            }),
          );
          counted.push(decision.code.toLowerCase());
          return { mustVoid: false };
        }
        inserts.push(
          authorized({
            id: paymentId,
            orderId,
            userId,
            amount: total,
            authorizationId: decision.authorizationId,
            at,
          }),
        );
        ledger.push({ paymentId, entry: authorizationEntry(total) });
        events.push(
          createEvent('payment.authorized.v1', {
            source: SOURCE,
            subject: paymentId,
            data: {
              paymentId,
              orderId,
              userId,
              amount: total,
              authorizationId: decision.authorizationId,
              authorizedAt: at.toISOString(),
            },
          }),
        );
        counted.push('authorized');
        // The order was cancelled while the processor was deciding: release the hold.
        return { mustVoid: state?.cancellation !== undefined };
      });
      await repository.insertMany(tx, inserts);
      await repository.appendLedgers(tx, ledger);
      await enqueueEvents(tx, events);
      return decided;
    });
    // Counted after the commit: a failed batch is re-run item by item and counted there.
    for (const outcome of counted) outcomes.add(1, { operation: 'authorize', outcome });
    return results;
  }

  /**
   * Records many captures (the processor has captured them) in ONE transaction: the payments'
   * row locks (sorted), the events' dedupe rows, then one multi-row update, ledger and outbox.
   */
  async function recordCaptures(items: readonly CaptureRecord[]): Promise<void[]> {
    let captured = 0;
    await inTransaction(pool, async (tx) => {
      const locked = await repository.lockByIds(
        tx,
        items.map((item) => item.paymentId),
      );
      const fresh = await repository.claimEvents(
        tx,
        consumerGroups.orderConfirmed,
        items.map((item) => item.eventId),
      );
      const updates = new Map<string, Payment>();
      const ledger: { paymentId: string; entry: LedgerEntry }[] = [];
      const events: BusEvent[] = [];
      for (const item of items) {
        const current = updates.get(item.paymentId) ?? locked.get(item.paymentId);
        if (!fresh.has(item.eventId) || current === undefined) continue;
        const at = now();
        const result = capture(current, at);
        if (!result.ok) continue;
        updates.set(current.id, result.payment);
        ledger.push({
          paymentId: current.id,
          entry: captureEntry(current.amount, result.payment.capturedAmount),
        });
        events.push(
          createEvent('payment.captured.v1', {
            source: SOURCE,
            subject: current.id,
            data: {
              paymentId: current.id,
              orderId: current.orderId,
              userId: current.userId,
              amount: { amount: result.payment.capturedAmount, currency: current.amount.currency },
              authorizationId: current.authorizationId ?? '',
              capturedAt: at.toISOString(),
            },
          }),
        );
      }
      await repository.updateMany(tx, [...updates.values()]);
      await repository.appendLedgers(tx, ledger);
      await enqueueEvents(tx, events);
      captured = events.length;
    });
    outcomes.add(captured, { operation: 'capture', outcome: 'captured' });
    return items.map(() => undefined);
  }

  const onBatchFailed = (kind: string) => (error: unknown, size: number) => {
    batchCounter.add(1, { kind, outcome: 'split' });
    logger.warn({ err: error, size, kind }, 'a batch failed; recording its deliveries one by one');
  };
  const counted =
    <I, R>(kind: string, run: (items: readonly I[]) => Promise<R[]>) =>
    async (items: readonly I[]): Promise<R[]> => {
      const results = await run(items);
      batchCounter.add(1, { kind, outcome: 'committed' });
      batchedRecords.record(items.length, { kind });
      return results;
    };
  const authorizations = createBatcher<AuthorizationRecord, { mustVoid: boolean }>({
    maxSize: batchSize,
    concurrency: batchConcurrency,
    run: counted('authorization', recordAuthorizations),
    onBatchFailed: onBatchFailed('authorization'),
  });
  const captures = createBatcher<CaptureRecord, void>({
    maxSize: batchSize,
    concurrency: batchConcurrency,
    run: counted('capture', recordCaptures),
    onBatchFailed: onBatchFailed('capture'),
  });
  // The reads before a processor call, one query per batch of deliveries instead of one each.
  const orderStates = createBatcher<string, OrderState>({
    maxSize: batchSize,
    concurrency: batchConcurrency,
    run: async (orderIds) => {
      const states = await repository.findOrderStates(pool, [...new Set(orderIds)]);
      return orderIds.map(
        (orderId) => states.get(orderId) ?? { payment: undefined, cancellation: undefined },
      );
    },
  });
  const paymentsById = createBatcher<string, Payment | undefined>({
    maxSize: batchSize,
    concurrency: batchConcurrency,
    run: async (ids) => {
      const found = await repository.findByIds(pool, [...new Set(ids)]);
      return ids.map((id) => found.get(id));
    },
  });

  return {
    get pendingRecords() {
      return authorizations.pending + captures.pending;
    },

    async authorizeOrder(event, delivery) {
      const { orderId } = event.data;
      const paymentId = paymentIdOf(orderId);
      const before = await orderStates.submit(orderId);
      if (before.payment !== undefined) return;
      const decision = await decideAuthorization(
        event,
        paymentId,
        before.cancellation !== undefined,
        delivery,
      );
      // Resolves once the transaction holding this record committed (the message is acked after).
      const { mustVoid } = await authorizations.submit({ event, paymentId, decision });
      if (mustVoid) {
        // Best effort now; the sweeper retries if this fails or the process dies here.
        await voidAuthorized(paymentId).catch((error: unknown) => {
          logger.warn({ paymentId, err: error }, 'late authorization not voided yet');
        });
      }
    },

    async captureOrder(event) {
      const { paymentId, orderId } = event.data;
      const payment =
        (await paymentsById.submit(paymentId)) ?? (await repository.findByOrder(pool, orderId));
      if (payment === undefined)
        throw new Error(`no payment ${paymentId} for confirmed ${orderId}`);
      if (payment.status !== 'AUTHORIZED') {
        if (payment.capturedAmount > 0) return; // captured already: a redelivery
        throw new Error(`payment ${payment.id} of confirmed ${orderId} is ${payment.status}`);
      }
      const result = await processor.capture({
        authorizationId: payment.authorizationId ?? '',
        amount: moneyOf(payment),
        idempotencyKey: processorKeyOf(payment.id, 'capture'),
      });
      if (result.kind === 'refused') {
        throw new Error(`the processor refused to capture ${payment.id}: ${result.reason}`);
      }
      // Resolves once the transaction holding this capture committed (the message is acked after).
      await captures.submit({ eventId: event.id, paymentId: payment.id });
    },

    async cancelOrder(event) {
      const { orderId, reason, cancelledAt } = event.data;
      const { payment } = await repository.findOrderState(pool, orderId);
      let action: { kind: 'void' } | { kind: 'refund'; refund: Refund } | undefined;
      if (payment?.status === 'AUTHORIZED' && payment.authorizationId !== null) {
        const result = await processor.void({
          authorizationId: payment.authorizationId,
          idempotencyKey: processorKeyOf(payment.id, 'void'),
        });
        // Refused: captured meanwhile (its confirmation raced the cancellation); the retry refunds.
        if (result.kind === 'refused') throw new Error(`void of ${payment.id}: ${result.reason}`);
        action = { kind: 'void' };
      } else if (payment !== undefined && refundableAmount(payment) > 0) {
        const pending = await repository.pendingRefundTotal(pool, payment.id);
        const amount = {
          amount: refundableAmount(payment, pending),
          currency: payment.amount.currency,
        };
        if (amount.amount > 0 && payment.authorizationId !== null) {
          const key = `order-cancelled:${event.id}`;
          const refund: Refund = {
            id: refundIdOf(payment.id, key),
            paymentId: payment.id,
            idempotencyKey: key,
            fingerprint: fingerprintOf({ amount }),
            amount,
            status: 'SUCCEEDED',
            failure: null,
            createdAt: now(),
          };
          const result = await processor.refund({
            authorizationId: payment.authorizationId,
            amount,
            idempotencyKey: processorKeyOf(payment.id, `refund:${refund.id}`),
          });
          if (result.kind === 'refused')
            throw new Error(`refund of ${payment.id}: ${result.reason}`);
          action = { kind: 'refund', refund };
        }
      }

      let mustSweep = false;
      await handleOnce(pool, consumerGroups.orderCancelled, event.id, async (tx) => {
        await repository.lockOrder(tx, orderId);
        await repository.recordCancellation(tx, {
          orderId,
          reason,
          cancelledAt: new Date(cancelledAt),
        });
        const locked =
          payment === undefined
            ? await repository.findByOrder(tx, orderId)
            : await repository.lockById(tx, payment.id);
        if (locked === undefined) return; // not placed yet: the memo voids it when it comes
        if (action?.kind === 'void') {
          if (!(await recordVoid(tx, locked))) {
            throw new Error(`payment ${locked.id} changed while being voided`);
          }
        } else if (action?.kind === 'refund') {
          if (checkRefund(locked, action.refund.amount) !== null) {
            throw new Error(`payment ${locked.id} changed while being refunded`);
          }
          await repository.insertRefund(tx, action.refund);
          await recordRefund(tx, locked, action.refund);
        } else if (locked.status === 'AUTHORIZED') {
          // Authorized after our first look: void it once this transaction has committed.
          mustSweep = true;
        }
      });
      if (mustSweep) {
        await voidAuthorized(paymentIdOf(orderId)).catch((error: unknown) => {
          logger.warn({ orderId, err: error }, 'authorization of a cancelled order not voided yet');
        });
      }
    },

    async voidCancelledAuthorizations(limit = 100) {
      const payments = await repository.findAuthorizedOfCancelledOrders(pool, limit);
      let voided = 0;
      for (const payment of payments) {
        try {
          if (await voidAuthorized(payment.id)) voided += 1;
        } catch (error) {
          logger.warn({ paymentId: payment.id, err: error }, 'void of a cancelled order failed');
        }
      }
      return voided;
    },

    async refund({ paymentId, amount, idempotencyKey }) {
      const fingerprint = fingerprintOf({ amount });
      let refund = await repository.findRefund(pool, paymentId, idempotencyKey);
      if (refund !== undefined) {
        if (refund.fingerprint !== fingerprint) throw idempotencyKeyReused();
        if (refund.status === 'SUCCEEDED') return { refund, isReplay: true };
        if (refund.status === 'FAILED') throw processorRefusedRefund(refund.failure?.message ?? '');
      } else {
        const pending: Refund = {
          id: refundIdOf(paymentId, idempotencyKey),
          paymentId,
          idempotencyKey,
          fingerprint,
          amount,
          status: 'PENDING',
          failure: null,
          createdAt: now(),
        };
        try {
          await inTransaction(pool, async (tx) => {
            const payment = await repository.lockById(tx, paymentId);
            if (payment === undefined) throw paymentNotFound();
            const reserved = await repository.pendingRefundTotal(tx, paymentId);
            const refusal = checkRefund(payment, amount, reserved);
            if (refusal !== null) throw paymentRefused(refusal);
            await repository.insertRefund(tx, pending);
          });
        } catch (error) {
          // Another request with the same key inserted it first.
          if ((error as { code?: string }).code === '23505') throw idempotencyKeyInUse();
          throw error;
        }
        refund = pending;
      }

      const payment = await repository.findById(pool, paymentId);
      if (payment?.authorizationId == null) throw paymentNotFound();
      let result;
      try {
        result = await processor.refund({
          authorizationId: payment.authorizationId,
          amount: refund.amount,
          idempotencyKey: processorKeyOf(paymentId, `refund:${refund.id}`),
        });
      } catch (error) {
        // The refund stays PENDING (its amount reserved); the same key resumes it.
        if (error instanceof ProcessorUnavailableError) throw processorUnavailable(error);
        throw error;
      }
      const settled = refund;
      if (result.kind === 'refused') {
        await inTransaction(pool, (tx) =>
          repository.settleRefund(tx, settled.id, {
            status: 'FAILED',
            code: result.reason,
            message: result.message,
          }),
        );
        outcomes.add(1, { operation: 'refund', outcome: 'refused' });
        throw processorRefusedRefund(result.message);
      }
      await inTransaction(pool, async (tx) => {
        const locked = await repository.lockById(tx, paymentId);
        if (locked === undefined) throw paymentNotFound();
        // Only the first to settle it books it; a concurrent resume of the same key finds it done.
        if (!(await repository.settleRefund(tx, settled.id, { status: 'SUCCEEDED' }))) return;
        if ((await recordRefund(tx, locked, settled)) === undefined) {
          throw new Error(`refund ${settled.id} no longer fits payment ${paymentId}`);
        }
      });
      return { refund: { ...settled, status: 'SUCCEEDED' }, isReplay: false };
    },

    async listByOrder(orderId, principal) {
      const payment = await repository.findByOrder(pool, orderId);
      if (payment === undefined) return [];
      const isAllowed = principal.roles.includes('admin') || principal.userId === payment.userId;
      return isAllowed ? [payment] : [];
    },
  };
}
