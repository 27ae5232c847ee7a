import type { Counter, Histogram, Meter, ObservableResult } from '@opentelemetry/api';
import { DURATION_BUCKETS_SECONDS } from './prometheus';

/**
 * Metric helpers for what only a service knows: business counters, saga outcomes, outbox
 * backlog, dead-letter depth. The names are fixed here because Prometheus' rules, alerts and
 * dashboards (`observability/`) query them; a service only decides when to record.
 * The Prometheus names are in this package's README.
 */

/** Why an order ended CANCELLED (the orders service's cancel reasons). */
export type OrderCancelReason = string;

/** Counters of the order funnel and the checkout saga, for the orders service. */
export interface OrderMetrics {
  /** An order was accepted (202, PENDING): `orders_placed_total`. */
  placed(): void;
  /** The saga ended CONFIRMED: `orders_saga_completed_total{outcome="confirmed"}` and revenue. */
  confirmed(total: { readonly amount: number; readonly currency: string }, placedAt: Date): void;
  /** The saga ended CANCELLED: `orders_saga_completed_total{outcome="cancelled", reason}`. */
  cancelled(reason: OrderCancelReason, placedAt: Date): void;
  /**
   * Reports the saga's backlog whenever Prometheus scrapes: PENDING orders and those past their
   * deadline (`orders_saga_pending`, `orders_saga_overdue` — the OrderSagaStuck alert). The
   * callback must answer from memory or a cheap query; it runs on every scrape.
   */
  observeBacklog(read: () => { readonly pending: number; readonly overdue: number }): void;
}

export function createOrderMetrics(meter: Meter): OrderMetrics {
  const placed = meter.createCounter('orders.placed', {
    unit: '{order}',
    description: 'Orders accepted (PENDING)',
  });
  const completed = meter.createCounter('orders.saga.completed', {
    unit: '{order}',
    description: 'Checkout sagas that reached a terminal state, by outcome and cancel reason',
  });
  const revenue = meter.createCounter('orders.revenue.minor_units', {
    unit: '1',
    description: 'Total of confirmed orders, in minor units of the currency (cents)',
  });
  const duration: Histogram = meter.createHistogram('orders.saga.duration', {
    unit: 's',
    description: 'Time from PENDING to a terminal state',
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_SECONDS, 15, 30, 60, 120] },
  });
  const pending = meter.createObservableGauge('orders.saga.pending', {
    unit: '{order}',
    description: 'Orders in PENDING now',
  });
  const overdue = meter.createObservableGauge('orders.saga.overdue', {
    unit: '{order}',
    description: 'PENDING orders past their payment deadline (should be none)',
  });
  const sinceSeconds = (placedAt: Date) => Math.max(0, (Date.now() - placedAt.getTime()) / 1000);
  return {
    placed: () => placed.add(1),
    confirmed(total, placedAt) {
      completed.add(1, { outcome: 'confirmed', reason: 'none' });
      revenue.add(total.amount, { currency: total.currency });
      duration.record(sinceSeconds(placedAt), { outcome: 'confirmed' });
    },
    cancelled(reason, placedAt) {
      completed.add(1, { outcome: 'cancelled', reason });
      duration.record(sinceSeconds(placedAt), { outcome: 'cancelled' });
    },
    observeBacklog(read) {
      meter.addBatchObservableCallback(
        (result) => {
          const backlog = read();
          result.observe(pending, backlog.pending);
          result.observe(overdue, backlog.overdue);
        },
        [pending, overdue],
      );
    },
  };
}

/** Payment outcomes, for the payments service: `payments_operations_total{operation, outcome}`. */
export interface PaymentMetrics {
  /** operation: authorize | capture | void | refund; outcome: succeeded | declined | failed. */
  record(operation: string, outcome: string, amount?: { amount: number; currency: string }): void;
}

export function createPaymentMetrics(meter: Meter): PaymentMetrics {
  const operations: Counter = meter.createCounter('payments.operations', {
    unit: '{operation}',
    description: 'Payment operations by kind and outcome',
  });
  const amounts: Counter = meter.createCounter('payments.amount.minor_units', {
    unit: '1',
    description: 'Money moved by successful operations, in minor units',
  });
  return {
    record(operation, outcome, amount) {
      operations.add(1, { operation, outcome });
      if (amount !== undefined && outcome === 'succeeded') {
        amounts.add(amount.amount, { operation, currency: amount.currency });
      }
    },
  };
}

/** The state of an outbox, read on every scrape. */
export interface OutboxBacklog {
  /** Events written but not yet published. */
  readonly pending: number;
  /** Age of the oldest unpublished event in seconds (0 when none). */
  readonly oldestAgeSeconds: number;
}

/**
 * Reports an outbox's backlog: `outbox_pending` and `outbox_oldest_age_seconds` (the OutboxLagging
 * alert). Give the latest value the relay knows (it reads the outbox anyway); avoid a query per scrape.
 */
export function observeOutbox(meter: Meter, read: () => OutboxBacklog): void {
  const pending = meter.createObservableGauge('outbox.pending', {
    unit: '{event}',
    description: 'Outbox events not yet published',
  });
  const oldest = meter.createObservableGauge('outbox.oldest_age', {
    unit: 's',
    description: 'Age of the oldest unpublished outbox event',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const backlog = read();
      result.observe(pending, backlog.pending);
      result.observe(oldest, backlog.oldestAgeSeconds);
    },
    [pending, oldest],
  );
}

/**
 * Reports how many messages wait in each consumer group's dead-letter queue:
 * `messaging_consumer_dlq_depth{messaging_consumer_group_name}` (the DeadLetterQueueNotEmpty alert).
 * `read` returns the last polled depths (e.g. from `checkQueue` every few seconds).
 */
export function observeDeadLetterDepth(
  meter: Meter,
  read: () => readonly { readonly group: string; readonly messages: number }[],
): void {
  const depth = meter.createObservableGauge('messaging.consumer.dlq.depth', {
    unit: '{message}',
    description: 'Messages in the consumer group’s dead-letter queue',
  });
  depth.addCallback((result: ObservableResult) => {
    for (const sample of read()) {
      result.observe(sample.messages, { 'messaging.consumer.group.name': sample.group });
    }
  });
}

/** Events a consumer appended to the warehouse, for analytics: `analytics_events_ingested_total{type}`. */
export function createIngestCounter(meter: Meter): (eventType: string) => void {
  const ingested = meter.createCounter('analytics.events.ingested', {
    unit: '{event}',
    description: 'Events appended to the warehouse, by type',
  });
  return (eventType) => ingested.add(1, { 'event.type': eventType });
}

/** Notifications sent, for notifications: `notifications_sent_total{channel, outcome}`. */
export function createNotificationCounter(
  meter: Meter,
): (channel: string, outcome: string) => void {
  const sent = meter.createCounter('notifications.sent', {
    unit: '{notification}',
    description: 'Notifications delivered or failed, by channel',
  });
  return (channel, outcome) => sent.add(1, { channel, outcome });
}
