// Generates a realistic, seeded stream of Bazaar events (checkout sagas with every outcome) and
// computes what the warehouse must answer straight from the envelopes — independently of the
// service's own event → fact mapping.
import { randomBytes } from 'node:crypto';
import { createEvent, type BazaarEvent, type Money } from '@bazaar/contracts';

/** mulberry32: a small seeded PRNG, so a failing run can be repeated. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const PRODUCTS = Array.from({ length: 25 }, (_, index) => ({
  productId: `prd_test${String(index).padStart(3, '0')}`,
  name: `Product ${index}`,
  price: 199 + index * 137,
}));

export const GENERATION_START = new Date('2026-01-10T00:00:00.000Z');
/** Orders are placed over this many hours after GENERATION_START. */
export const GENERATION_HOURS = 48;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * At least `minEvents` distinct events: each order is a saga — placed, then authorized + confirmed +
 * captured (sometimes refunded in part), or failed + cancelled, or timed out, or cancelled by the user
 * (authorization voided) — plus some registrations. Ids are unique per call.
 */
export function generateEvents(minEvents: number, seed: number): BazaarEvent[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const run = randomBytes(4).toString('hex');
  const events: BazaarEvent[] = [];
  let n = 0;
  while (events.length < minEvents) {
    n += 1;
    const orderId = `ord_${run}_${n}`;
    const userId = `usr_${run}_${n % 997}`;
    const paymentId = `pay_${run}_${n}`;
    const currency = random() < 0.8 ? 'USD' : 'EUR';
    const placed = GENERATION_START.getTime() + Math.floor(random() * GENERATION_HOURS * 3_600_000);
    const lines = 1 + Math.floor(random() * 3);
    const items = Array.from({ length: lines }, () => {
      const product = pick(PRODUCTS);
      return {
        productId: product.productId,
        name: product.name,
        quantity: 1 + Math.floor(random() * 4),
        unitPrice: { amount: product.price, currency },
      };
    });
    const total: Money = {
      amount: items.reduce((sum, item) => sum + item.quantity * item.unitPrice.amount, 0),
      currency,
    };
    const ids = { orderId, userId, paymentId };
    events.push(
      createEvent('order.placed.v1', {
        source: '/orders',
        subject: orderId,
        time: iso(placed),
        data: {
          orderId,
          userId,
          items,
          total,
          paymentToken: 'tok_visa',
          placedAt: iso(placed),
          deadline: iso(placed + 30_000),
        },
      }),
    );
    const outcome = random();
    const later = (ms: number) => iso(placed + ms);
    const released = items.map((item) => ({ productId: item.productId, quantity: item.quantity }));
    if (outcome < 0.65) {
      const auth = { authorizationId: `auth_${run}_${n}` };
      events.push(
        createEvent('payment.authorized.v1', {
          source: '/payments',
          subject: paymentId,
          time: later(800),
          data: { ...ids, amount: total, ...auth, authorizedAt: later(800) },
        }),
        createEvent('order.confirmed.v1', {
          source: '/orders',
          subject: orderId,
          time: later(900),
          data: { ...ids, total, confirmedAt: later(900) },
        }),
        createEvent('payment.captured.v1', {
          source: '/payments',
          subject: paymentId,
          time: later(1_200),
          data: { ...ids, amount: total, ...auth, capturedAt: later(1_200) },
        }),
      );
      if (random() < 0.1) {
        const amount = { amount: Math.max(1, Math.floor(total.amount / 2)), currency };
        events.push(
          createEvent('payment.refunded.v1', {
            source: '/payments',
            subject: paymentId,
            time: later(3_600_000),
            data: {
              ...ids,
              refundId: `rfd_${run}_${n}`,
              amount,
              totalRefunded: amount,
              refundedAt: later(3_600_000),
            },
          }),
        );
      }
    } else if (outcome < 0.85) {
      const code = random() < 0.5 ? 'CARD_DECLINED' : 'INSUFFICIENT_FUNDS';
      events.push(
        createEvent('payment.failed.v1', {
          source: '/payments',
          subject: paymentId,
          time: later(700),
          data: { ...ids, amount: total, reason: { code, message: code }, failedAt: later(700) },
        }),
        createEvent('order.cancelled.v1', {
          source: '/orders',
          subject: orderId,
          time: later(750),
          data: {
            orderId,
            userId,
            reason: 'PAYMENT_DECLINED',
            paymentId,
            releasedItems: released,
            total,
            cancelledAt: later(750),
          },
        }),
      );
    } else if (outcome < 0.93) {
      events.push(
        createEvent('order.cancelled.v1', {
          source: '/orders',
          subject: orderId,
          time: later(30_000),
          data: {
            orderId,
            userId,
            reason: 'PAYMENT_TIMEOUT',
            releasedItems: released,
            total,
            cancelledAt: later(30_000),
          },
        }),
      );
    } else {
      const auth = { authorizationId: `auth_${run}_${n}` };
      events.push(
        createEvent('order.cancelled.v1', {
          source: '/orders',
          subject: orderId,
          time: later(500),
          data: {
            orderId,
            userId,
            reason: 'USER_CANCELLED',
            releasedItems: released,
            total,
            cancelledAt: later(500),
          },
        }),
        createEvent('payment.authorized.v1', {
          source: '/payments',
          subject: paymentId,
          time: later(800),
          data: { ...ids, amount: total, ...auth, authorizedAt: later(800) },
        }),
        createEvent('payment.voided.v1', {
          source: '/payments',
          subject: paymentId,
          time: later(900),
          data: { ...ids, amount: total, ...auth, voidedAt: later(900) },
        }),
      );
    }
    if (n % 10 === 0) {
      events.push(
        createEvent('user.registered.v1', {
          source: '/users',
          subject: `usr_${run}_r${n}`,
          time: iso(placed),
          data: {
            userId: `usr_${run}_r${n}`,
            email: `user${n}@example.com`,
            name: `User ${n}`,
            registeredAt: iso(placed),
          },
        }),
      );
    }
  }
  return events;
}

/** `events` plus `duplicates` copies of random ones, shuffled (a redelivery is the same message). */
export function withDuplicates(
  events: readonly BazaarEvent[],
  duplicates: number,
  seed: number,
): BazaarEvent[] {
  const random = seededRandom(seed);
  const stream = [...events];
  for (let i = 0; i < duplicates; i += 1) {
    stream.push(events[Math.floor(random() * events.length)] as BazaarEvent);
  }
  for (let i = stream.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [stream[i], stream[j]] = [stream[j] as BazaarEvent, stream[i] as BazaarEvent];
  }
  return stream;
}

export interface Expected {
  events: number;
  ordersPlaced: number;
  ordersConfirmed: number;
  ordersCancelled: number;
  paymentsFailed: number;
  captured: Money[];
  refunded: Money[];
  revenue: Money[];
  cancellations: Record<string, number>;
  /** productId → units in confirmed orders. */
  productQuantities: Map<string, number>;
  /** hour start (ISO) → orders placed. */
  placedPerHour: Map<string, number>;
}

function money(totals: Map<string, number>): Money[] {
  return [...totals.entries()]
    .filter(([, amount]) => amount !== 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([currency, amount]) => ({ amount, currency }));
}

/** What the warehouse must report for the distinct `events` (every business time in range). */
export function expectedOf(events: readonly BazaarEvent[]): Expected {
  const distinct = new Map(events.map((event) => [event.id, event]));
  const captured = new Map<string, number>();
  const refunded = new Map<string, number>();
  const add = (totals: Map<string, number>, m: Money) =>
    totals.set(m.currency, (totals.get(m.currency) ?? 0) + m.amount);
  const expected: Expected = {
    events: distinct.size,
    ordersPlaced: 0,
    ordersConfirmed: 0,
    ordersCancelled: 0,
    paymentsFailed: 0,
    captured: [],
    refunded: [],
    revenue: [],
    cancellations: {},
    productQuantities: new Map(),
    placedPerHour: new Map(),
  };
  const confirmedOrders = new Set<string>();
  for (const event of distinct.values()) {
    if (event.type === 'order.confirmed.v1') confirmedOrders.add(event.data.orderId);
  }
  for (const event of distinct.values()) {
    switch (event.type) {
      case 'order.placed.v1': {
        expected.ordersPlaced += 1;
        const hour = new Date(event.data.placedAt);
        hour.setUTCMinutes(0, 0, 0);
        const key = hour.toISOString();
        expected.placedPerHour.set(key, (expected.placedPerHour.get(key) ?? 0) + 1);
        if (confirmedOrders.has(event.data.orderId)) {
          for (const item of event.data.items) {
            expected.productQuantities.set(
              item.productId,
              (expected.productQuantities.get(item.productId) ?? 0) + item.quantity,
            );
          }
        }
        break;
      }
      case 'order.confirmed.v1':
        expected.ordersConfirmed += 1;
        break;
      case 'order.cancelled.v1':
        expected.ordersCancelled += 1;
        expected.cancellations[event.data.reason] =
          (expected.cancellations[event.data.reason] ?? 0) + 1;
        break;
      case 'payment.failed.v1':
        expected.paymentsFailed += 1;
        break;
      case 'payment.captured.v1':
        add(captured, event.data.amount);
        break;
      case 'payment.refunded.v1':
        add(refunded, event.data.amount);
        break;
      default:
        break;
    }
  }
  const revenue = new Map(captured);
  for (const [currency, amount] of refunded) {
    revenue.set(currency, (revenue.get(currency) ?? 0) - amount);
  }
  expected.captured = money(captured);
  expected.refunded = money(refunded);
  expected.revenue = money(revenue);
  return expected;
}
