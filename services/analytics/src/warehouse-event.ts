// What the warehouse keeps of one event: the raw envelope (the source of truth, replayable) and the
// typed fact rows derived from it. Pure: no I/O, so every adapter and the replay share one mapping.
import { createHash } from 'node:crypto';
import type { BazaarEvent, Money } from '@bazaar/contracts';

export type OrderFactKind = 'placed' | 'confirmed' | 'cancelled';
export type PaymentFactKind = 'authorized' | 'failed' | 'captured' | 'voided' | 'refunded';

/** The envelope as stored; `occurredAt` is the envelope's `time`, `data` its JSON. */
export interface RawEventRow {
  readonly eventId: string;
  /** First 64 bits of MD5(event id): a compact key the dedupe check scans instead of the id. */
  readonly idHash: bigint;
  readonly type: string;
  readonly source: string;
  readonly subject: string;
  readonly occurredAt: string;
  readonly data: string;
}

export interface OrderFact {
  readonly eventId: string;
  readonly orderId: string;
  readonly userId: string;
  readonly kind: OrderFactKind;
  readonly amount: number;
  readonly currency: string;
  readonly cancelReason: string | null;
  readonly occurredAt: string;
}

/** One line of a placed order (what was bought, at which price). */
export interface OrderItemFact {
  readonly eventId: string;
  readonly orderId: string;
  readonly productId: string;
  readonly productName: string;
  readonly quantity: number;
  readonly unitAmount: number;
  readonly currency: string;
  readonly occurredAt: string;
}

export interface PaymentFact {
  readonly eventId: string;
  readonly paymentId: string;
  readonly orderId: string;
  readonly userId: string;
  readonly kind: PaymentFactKind;
  readonly amount: number;
  readonly currency: string;
  readonly failureCode: string | null;
  readonly occurredAt: string;
}

/** Who registered when; the email and name stay in the raw event only. */
export interface UserFact {
  readonly eventId: string;
  readonly userId: string;
  readonly occurredAt: string;
}

/** The rows of a batch of events, table by table. */
export interface FactRows {
  readonly raw: RawEventRow[];
  readonly orders: OrderFact[];
  readonly orderItems: OrderItemFact[];
  readonly payments: PaymentFact[];
  readonly users: UserFact[];
}

export function emptyFactRows(): FactRows {
  return { raw: [], orders: [], orderItems: [], payments: [], users: [] };
}

/** The dedupe key of an event id (stable across DuckDB versions, unlike its `hash()`). */
export function idHashOf(eventId: string): bigint {
  return createHash('md5').update(eventId).digest().readBigUInt64BE(0);
}

/** Timestamps are stored in UTC with millisecond precision, whatever offset the producer used. */
export function normalizeTimestamp(value: string): string {
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new RangeError(`not a timestamp: ${value}`);
  return time.toISOString();
}

function orderFact(
  event: BazaarEvent,
  data: { orderId: string; userId: string; total: Money },
  kind: OrderFactKind,
  at: string,
  cancelReason: string | null = null,
): OrderFact {
  return {
    eventId: event.id,
    orderId: data.orderId,
    userId: data.userId,
    kind,
    amount: data.total.amount,
    currency: data.total.currency,
    cancelReason,
    occurredAt: normalizeTimestamp(at),
  };
}

function paymentFact(
  event: BazaarEvent,
  data: { paymentId: string; orderId: string; userId: string; amount: Money },
  kind: PaymentFactKind,
  at: string,
  failureCode: string | null = null,
): PaymentFact {
  return {
    eventId: event.id,
    paymentId: data.paymentId,
    orderId: data.orderId,
    userId: data.userId,
    kind,
    amount: data.amount.amount,
    currency: data.amount.currency,
    failureCode,
    occurredAt: normalizeTimestamp(at),
  };
}

/** Adds one event's rows to `rows`. Every event type maps to a raw row; most add a fact. */
export function addFactsOf(rows: FactRows, event: BazaarEvent): void {
  rows.raw.push({
    eventId: event.id,
    idHash: idHashOf(event.id),
    type: event.type,
    source: event.source,
    subject: event.subject,
    occurredAt: normalizeTimestamp(event.time),
    data: JSON.stringify(event.data),
  });
  switch (event.type) {
    case 'order.placed.v1': {
      const { data } = event;
      rows.orders.push(orderFact(event, data, 'placed', data.placedAt));
      const occurredAt = normalizeTimestamp(data.placedAt);
      for (const item of data.items) {
        rows.orderItems.push({
          eventId: event.id,
          orderId: data.orderId,
          productId: item.productId,
          productName: item.name,
          quantity: item.quantity,
          unitAmount: item.unitPrice.amount,
          currency: item.unitPrice.currency,
          occurredAt,
        });
      }
      return;
    }
    case 'order.confirmed.v1':
      rows.orders.push(orderFact(event, event.data, 'confirmed', event.data.confirmedAt));
      return;
    case 'order.cancelled.v1':
      rows.orders.push(
        orderFact(event, event.data, 'cancelled', event.data.cancelledAt, event.data.reason),
      );
      return;
    case 'payment.authorized.v1':
      rows.payments.push(paymentFact(event, event.data, 'authorized', event.data.authorizedAt));
      return;
    case 'payment.failed.v1':
      rows.payments.push(
        paymentFact(event, event.data, 'failed', event.data.failedAt, event.data.reason.code),
      );
      return;
    case 'payment.captured.v1':
      rows.payments.push(paymentFact(event, event.data, 'captured', event.data.capturedAt));
      return;
    case 'payment.voided.v1':
      rows.payments.push(paymentFact(event, event.data, 'voided', event.data.voidedAt));
      return;
    case 'payment.refunded.v1':
      rows.payments.push(paymentFact(event, event.data, 'refunded', event.data.refundedAt));
      return;
    case 'user.registered.v1':
      rows.users.push({
        eventId: event.id,
        userId: event.data.userId,
        occurredAt: normalizeTimestamp(event.data.registeredAt),
      });
      return;
    default: {
      const unknown: never = event;
      throw new TypeError(`no facts for event type ${(unknown as BazaarEvent).type}`);
    }
  }
}

/** The rows of `events`. */
export function factRowsOf(events: Iterable<BazaarEvent>): FactRows {
  const rows = emptyFactRows();
  for (const event of events) addFactsOf(rows, event);
  return rows;
}

/** The first event of each id, in order: a batch may hold a message and its redelivery. */
export function uniqueById<E extends { readonly id: string }>(events: Iterable<E>): E[] {
  const seen = new Map<string, E>();
  for (const event of events) if (!seen.has(event.id)) seen.set(event.id, event);
  return [...seen.values()];
}
