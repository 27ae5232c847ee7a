import { randomBytes } from 'node:crypto';

// The order aggregate: its shape, pricing from the catalog, and the state machine of the checkout saga.
// Pure: no I/O, so every rule here is unit- and property-tested.

export type OrderStatus = 'PENDING' | 'CONFIRMED' | 'CANCELLED';

export type CancelReason =
  'PAYMENT_DECLINED' | 'PAYMENT_TIMEOUT' | 'PAYMENT_UNAVAILABLE' | 'USER_CANCELLED';

export interface Money {
  readonly amount: number;
  readonly currency: string;
}

export interface OrderLine {
  readonly productId: string;
  readonly name: string;
  readonly quantity: number;
  readonly unitPrice: Money;
}

export interface Order {
  readonly id: string;
  readonly userId: string;
  readonly status: OrderStatus;
  readonly items: readonly OrderLine[];
  readonly total: Money;
  readonly placedAt: Date;
  readonly deadline: Date;
  readonly updatedAt: Date;
  readonly paymentId?: string;
  readonly cancelReason?: CancelReason;
  readonly confirmedAt?: Date;
  readonly cancelledAt?: Date;
}

/** What can happen to an order. */
export type OrderCommand =
  | { readonly type: 'authorize'; readonly paymentId: string; readonly at: Date }
  | {
      readonly type: 'fail';
      readonly paymentId: string;
      readonly reason: 'PAYMENT_DECLINED' | 'PAYMENT_UNAVAILABLE';
      readonly at: Date;
    }
  | { readonly type: 'expire'; readonly at: Date }
  | { readonly type: 'cancel'; readonly at: Date };

/**
 * The outcome of a command: `apply` moves the order (and says which event to emit), `ignore` leaves
 * it as it is — a duplicate, late or out-of-order fact for an order that has already moved on.
 */
export type OrderDecision =
  | { readonly kind: 'apply'; readonly next: Order; readonly effect: 'confirmed' | 'cancelled' }
  | { readonly kind: 'ignore'; readonly why: string };

export const TERMINAL_STATUSES: ReadonlySet<OrderStatus> = new Set(['CANCELLED']);

/**
 * The state machine. PENDING → CONFIRMED on authorization; PENDING → CANCELLED on a failed payment,
 * the deadline, or the user; CONFIRMED → CANCELLED by the user only (not shipped: Bazaar does not ship
 * yet, so a CONFIRMED order is always cancellable — payments refunds the capture). CANCELLED is final.
 * A late authorization for a CANCELLED order is ignored here: payments voids it on `order.cancelled`.
 */
export function decide(order: Order, command: OrderCommand): OrderDecision {
  switch (command.type) {
    case 'authorize':
      if (order.status !== 'PENDING') return { kind: 'ignore', why: `order is ${order.status}` };
      return {
        kind: 'apply',
        effect: 'confirmed',
        next: {
          ...order,
          status: 'CONFIRMED',
          paymentId: command.paymentId,
          confirmedAt: command.at,
          updatedAt: command.at,
        },
      };
    case 'fail':
      if (order.status !== 'PENDING') return { kind: 'ignore', why: `order is ${order.status}` };
      return cancelled(order, command.reason, command.at, command.paymentId);
    case 'expire':
      if (order.status !== 'PENDING') return { kind: 'ignore', why: `order is ${order.status}` };
      if (command.at.getTime() < order.deadline.getTime()) {
        return { kind: 'ignore', why: 'deadline not reached' };
      }
      return cancelled(order, 'PAYMENT_TIMEOUT', command.at, order.paymentId);
    case 'cancel':
      if (order.status === 'CANCELLED') return { kind: 'ignore', why: 'order is CANCELLED' };
      return cancelled(order, 'USER_CANCELLED', command.at, order.paymentId);
  }
}

function cancelled(
  order: Order,
  reason: CancelReason,
  at: Date,
  paymentId: string | undefined,
): OrderDecision {
  return {
    kind: 'apply',
    effect: 'cancelled',
    next: {
      ...order,
      status: 'CANCELLED',
      cancelReason: reason,
      cancelledAt: at,
      updatedAt: at,
      ...(paymentId === undefined ? {} : { paymentId }),
    },
  };
}

/** A line of a request to place an order. */
export interface RequestedLine {
  readonly productId: string;
  readonly quantity: number;
}

/** What pricing needs to know about a product. */
export interface PricedProduct {
  readonly id: string;
  readonly name: string;
  readonly price: Money;
}

export type PricingProblem =
  | { readonly kind: 'unknown_product'; readonly index: number; readonly productId: string }
  | { readonly kind: 'duplicate_product'; readonly index: number; readonly productId: string }
  | { readonly kind: 'mixed_currencies' }
  | { readonly kind: 'total_too_large' };

/**
 * Prices the requested lines from the catalog (never from the client). Every line's product must
 * exist, appear once, and share one currency; the total must stay a safe integer.
 */
export function priceOrder(
  requested: readonly RequestedLine[],
  catalog: ReadonlyMap<string, PricedProduct>,
): { ok: true; items: OrderLine[]; total: Money } | { ok: false; problems: PricingProblem[] } {
  const problems: PricingProblem[] = [];
  const seen = new Set<string>();
  const items: OrderLine[] = [];
  requested.forEach((line, index) => {
    if (seen.has(line.productId)) {
      problems.push({ kind: 'duplicate_product', index, productId: line.productId });
      return;
    }
    seen.add(line.productId);
    const product = catalog.get(line.productId);
    if (product === undefined) {
      problems.push({ kind: 'unknown_product', index, productId: line.productId });
      return;
    }
    items.push({
      productId: product.id,
      name: product.name,
      quantity: line.quantity,
      unitPrice: product.price,
    });
  });
  const currencies = new Set(items.map((item) => item.unitPrice.currency));
  if (currencies.size > 1) problems.push({ kind: 'mixed_currencies' });
  if (problems.length > 0) return { ok: false, problems };
  let amount = 0;
  for (const item of items) amount += item.quantity * item.unitPrice.amount;
  if (!Number.isSafeInteger(amount)) return { ok: false, problems: [{ kind: 'total_too_large' }] };
  const currency = items[0]?.unitPrice.currency ?? 'USD';
  return { ok: true, items, total: { amount, currency } };
}

const ID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * An id with a type prefix and 26 Crockford base32 characters: 10 from the time (so ids sort by
 * creation and serve as the newest-first cursor of a user's orders) and 16 random (80 bits).
 */
export function newId(prefix: 'ord' | 'prd', now: Date = new Date()): string {
  let time = now.getTime();
  let timePart = '';
  for (let index = 0; index < 10; index += 1) {
    timePart = ID_ALPHABET.charAt(time % 32) + timePart;
    time = Math.floor(time / 32);
  }
  let randomPart = '';
  for (const byte of randomBytes(16)) randomPart += ID_ALPHABET.charAt(byte % 32);
  return `${prefix}_${timePart}${randomPart}`;
}

export const ORDER_ID_PATTERN = '^ord_[A-Za-z0-9_-]{1,64}$';
export const PRODUCT_ID_PATTERN = '^prd_[A-Za-z0-9_-]{1,64}$';
export const PAYMENT_TOKEN_PATTERN = '^tok_[A-Za-z0-9_]{1,64}$';
