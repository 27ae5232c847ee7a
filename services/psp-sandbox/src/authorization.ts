/** Money in minor units, e.g. `{ amount: 1299, currency: 'USD' }` for $12.99. */
export interface Money {
  readonly amount: number;
  readonly currency: string;
}

/** A request to reserve `amount` on the card behind `token`. */
export interface AuthorizationRequest {
  readonly token: string;
  readonly amount: Money;
  /** The caller's reference, e.g. a payment id; echoed back. */
  readonly reference: string;
}

/** An approved authorization. */
export interface Authorization {
  readonly id: string;
  readonly status: 'approved';
  readonly amount: Money;
  readonly reference: string;
  readonly createdAt: string;
}

/** What the card network says about a token. */
export type CardDecision =
  | { readonly kind: 'approve'; readonly delayed: boolean }
  | { readonly kind: 'decline'; readonly reason: 'card_declined' | 'insufficient_funds' }
  | { readonly kind: 'unknown_token' };

/**
 * The sandbox's test cards, as a real processor documents its test tokens. No card number ever
 * enters Bazaar: clients only hold tokens like these.
 */
export const testTokens: Readonly<Record<string, CardDecision>> = {
  tok_visa: { kind: 'approve', delayed: false },
  tok_slow: { kind: 'approve', delayed: true },
  tok_chargeDeclined: { kind: 'decline', reason: 'card_declined' },
  tok_insufficientFunds: { kind: 'decline', reason: 'insufficient_funds' },
};

/** The decision for `token`. */
export function decide(token: string): CardDecision {
  return Object.hasOwn(testTokens, token)
    ? (testTokens[token] ?? { kind: 'unknown_token' })
    : { kind: 'unknown_token' };
}

/** Where an authorization stands at the processor. */
export type AuthorizationStatus = 'approved' | 'captured' | 'voided';

/** The processor's record of one approved authorization: what was captured and refunded on it. */
export interface AuthorizationRecord {
  readonly id: string;
  readonly status: AuthorizationStatus;
  readonly amount: Money;
  readonly reference: string;
  readonly capturedAmount: number;
  readonly refundedAmount: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Why the processor refuses an operation on an authorization. */
export type OperationRefusal =
  'currency_mismatch' | 'amount_too_large' | 'not_capturable' | 'not_voidable' | 'not_refundable';

/** The outcome of a pure transition: the new record, or why it is refused. */
export type TransitionResult =
  | { readonly ok: true; readonly record: AuthorizationRecord }
  | { readonly ok: false; readonly refusal: OperationRefusal };

function refuse(refusal: OperationRefusal): TransitionResult {
  return { ok: false, refusal };
}

/** Captures `amount` (at most the authorized amount) of an approved authorization, once. */
export function capture(record: AuthorizationRecord, amount: Money, at: Date): TransitionResult {
  if (record.status !== 'approved') return refuse('not_capturable');
  if (amount.currency !== record.amount.currency) return refuse('currency_mismatch');
  if (amount.amount > record.amount.amount) return refuse('amount_too_large');
  return {
    ok: true,
    record: {
      ...record,
      status: 'captured',
      capturedAmount: amount.amount,
      updatedAt: at.toISOString(),
    },
  };
}

/** Releases an approved, uncaptured authorization. */
export function voidAuthorization(record: AuthorizationRecord, at: Date): TransitionResult {
  if (record.status !== 'approved') return refuse('not_voidable');
  return { ok: true, record: { ...record, status: 'voided', updatedAt: at.toISOString() } };
}

/** Refunds `amount` of a captured authorization; the refunds never add up to more than the capture. */
export function refund(record: AuthorizationRecord, amount: Money, at: Date): TransitionResult {
  if (record.status !== 'captured') return refuse('not_refundable');
  if (amount.currency !== record.amount.currency) return refuse('currency_mismatch');
  if (record.refundedAmount + amount.amount > record.capturedAmount)
    return refuse('amount_too_large');
  return {
    ok: true,
    record: {
      ...record,
      refundedAmount: record.refundedAmount + amount.amount,
      updatedAt: at.toISOString(),
    },
  };
}
