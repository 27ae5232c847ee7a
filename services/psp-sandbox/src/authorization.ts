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
