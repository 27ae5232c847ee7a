import { createHash } from 'node:crypto';

/** Money in minor units, e.g. `{ amount: 1299, currency: 'USD' }` for $12.99. */
export interface Money {
  readonly amount: number;
  readonly currency: string;
}

/**
 * Where a payment stands:
 * - `AUTHORIZED`: the processor holds the amount on the card; nothing taken yet;
 * - `FAILED`: the processor declined, or could not be reached; nothing held;
 * - `CANCELLED`: the order was cancelled before anything was asked of the processor;
 * - `CAPTURED`: the amount is taken; `PARTIALLY_REFUNDED` / `REFUNDED`: part / all of it given back;
 * - `VOIDED`: the hold was released without capture.
 */
export type PaymentStatus =
  'AUTHORIZED' | 'FAILED' | 'CANCELLED' | 'CAPTURED' | 'PARTIALLY_REFUNDED' | 'REFUNDED' | 'VOIDED';

/** Why an authorization failed (the `payment.failed.v1` reason codes). */
export type FailureCode =
  'CARD_DECLINED' | 'INSUFFICIENT_FUNDS' | 'INVALID_CARD_TOKEN' | 'PROCESSOR_UNAVAILABLE';

export interface Payment {
  readonly id: string;
  readonly orderId: string;
  readonly userId: string;
  /** The authorized (or attempted) amount: the order total. */
  readonly amount: Money;
  readonly status: PaymentStatus;
  readonly authorizationId: string | null;
  readonly failure: { readonly code: FailureCode; readonly message: string } | null;
  /** Minor units, in `amount.currency`. */
  readonly capturedAmount: number;
  readonly refundedAmount: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Why a transition is not allowed. */
export type PaymentRefusal =
  | 'not_capturable'
  | 'not_voidable'
  | 'not_refundable'
  | 'currency_mismatch'
  | 'refund_exceeds_captured'
  | 'invalid_amount';

export type Transition =
  | { readonly ok: true; readonly payment: Payment }
  | { readonly ok: false; readonly refusal: PaymentRefusal };

const ID_BYTES = 16;

/**
 * The payment id of an order: derived from the order id, so every delivery and retry of the same
 * order.placed.v1 — even after a crash between the processor's answer and the commit — uses the same
 * payment id, hence the same processor Idempotency-Key and body: the processor charges once.
 */
export function paymentIdOf(orderId: string): string {
  return `pay_${createHash('sha256').update(`payment:${orderId}`).digest('base64url').slice(0, 22)}`;
}

/** A refund id derived from its payment and a key, for the same reason as {@link paymentIdOf}. */
export function refundIdOf(paymentId: string, key: string): string {
  return `rfd_${createHash('sha256')
    .update(`refund:${paymentId}:${key}`)
    .digest('base64url')
    .slice(0, Math.ceil((ID_BYTES * 4) / 3))}`;
}

/** The processor Idempotency-Key of one operation on one payment: identical on every retry. */
export function processorKeyOf(
  paymentId: string,
  operation: 'authorize' | 'capture' | 'void' | `refund:${string}`,
): string {
  return `${paymentId}:${operation}`;
}

/** A new authorized payment. */
export function authorized(input: {
  id: string;
  orderId: string;
  userId: string;
  amount: Money;
  authorizationId: string;
  at: Date;
}): Payment {
  return {
    id: input.id,
    orderId: input.orderId,
    userId: input.userId,
    amount: input.amount,
    status: 'AUTHORIZED',
    authorizationId: input.authorizationId,
    failure: null,
    capturedAmount: 0,
    refundedAmount: 0,
    createdAt: input.at,
    updatedAt: input.at,
  };
}

/** A new payment whose authorization failed, or that was never attempted (`CANCELLED`). */
export function unauthorized(input: {
  id: string;
  orderId: string;
  userId: string;
  amount: Money;
  status: 'FAILED' | 'CANCELLED';
  failure: Payment['failure'];
  at: Date;
}): Payment {
  return {
    id: input.id,
    orderId: input.orderId,
    userId: input.userId,
    amount: input.amount,
    status: input.status,
    authorizationId: null,
    failure: input.failure,
    capturedAmount: 0,
    refundedAmount: 0,
    createdAt: input.at,
    updatedAt: input.at,
  };
}

function refuse(refusal: PaymentRefusal): Transition {
  return { ok: false, refusal };
}

/** Captures the whole authorized amount (orders confirm the total they had authorized). */
export function capture(payment: Payment, at: Date): Transition {
  if (payment.status !== 'AUTHORIZED') return refuse('not_capturable');
  return {
    ok: true,
    payment: {
      ...payment,
      status: 'CAPTURED',
      capturedAmount: payment.amount.amount,
      updatedAt: at,
    },
  };
}

/** Releases the hold of an authorized payment. */
export function voidPayment(payment: Payment, at: Date): Transition {
  if (payment.status !== 'AUTHORIZED') return refuse('not_voidable');
  return { ok: true, payment: { ...payment, status: 'VOIDED', updatedAt: at } };
}

/** What can still be refunded: captured minus refunded (minus what other refunds have reserved). */
export function refundableAmount(payment: Payment, reserved = 0): number {
  if (payment.status !== 'CAPTURED' && payment.status !== 'PARTIALLY_REFUNDED') return 0;
  return payment.capturedAmount - payment.refundedAmount - reserved;
}

/**
 * Checks a refund request: a positive amount in the payment's currency, at most what is refundable
 * (`reserved` = amounts of refunds still in flight).
 */
export function checkRefund(payment: Payment, amount: Money, reserved = 0): PaymentRefusal | null {
  if (payment.status !== 'CAPTURED' && payment.status !== 'PARTIALLY_REFUNDED') {
    return 'not_refundable';
  }
  if (!Number.isSafeInteger(amount.amount) || amount.amount <= 0) return 'invalid_amount';
  if (amount.currency !== payment.amount.currency) return 'currency_mismatch';
  if (amount.amount > refundableAmount(payment, reserved)) return 'refund_exceeds_captured';
  return null;
}

/** Refunds `amount`; never more than captured in total. */
export function refund(payment: Payment, amount: Money, at: Date): Transition {
  const refusal = checkRefund(payment, amount);
  if (refusal !== null) return refuse(refusal);
  const refundedAmount = payment.refundedAmount + amount.amount;
  return {
    ok: true,
    payment: {
      ...payment,
      status: refundedAmount === payment.capturedAmount ? 'REFUNDED' : 'PARTIALLY_REFUNDED',
      refundedAmount,
      updatedAt: at,
    },
  };
}
