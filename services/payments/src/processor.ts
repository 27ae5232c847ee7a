import type { Money } from './payment';

// The card processor as payments' core sees it. One adapter per processor implements it
// (psp-sandbox.processor.ts today; a Stripe adapter with its official SDK would be another file):
// nothing outside the adapter knows URLs, wire formats or the processor's error codes.

/** Decline codes a processor may answer with (the `payment.failed.v1` reason codes). */
export type DeclineCode = 'CARD_DECLINED' | 'INSUFFICIENT_FUNDS' | 'INVALID_CARD_TOKEN';

export type AuthorizeResult =
  | { readonly kind: 'approved'; readonly authorizationId: string }
  | { readonly kind: 'declined'; readonly code: DeclineCode; readonly message: string };

/** A capture, void or refund: done, or refused by the processor for a stated reason. */
export type OperationResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'refused'; readonly reason: string; readonly message: string };

export interface AuthorizeInput {
  /** The processor's card token (`tok_…`); never card data. */
  readonly token: string;
  readonly amount: Money;
  /** Our payment id, stored by the processor with the authorization. */
  readonly reference: string;
  /** The same on every retry of this operation: the processor performs it once. */
  readonly idempotencyKey: string;
}

export interface AuthorizationOperationInput {
  readonly authorizationId: string;
  readonly idempotencyKey: string;
}

/**
 * A card processor. Every method either resolves with the processor's decision or rejects with a
 * {@link ProcessorUnavailableError} when no decision was received: the processor may or may not have
 * acted, so the caller retries with the same idempotency key (or gives up, see `isCircuitOpen`).
 */
export interface PaymentProcessor {
  readonly name: string;
  authorize(input: AuthorizeInput): Promise<AuthorizeResult>;
  capture(
    input: AuthorizationOperationInput & { readonly amount: Money },
  ): Promise<OperationResult>;
  void(input: AuthorizationOperationInput): Promise<OperationResult>;
  refund(input: AuthorizationOperationInput & { readonly amount: Money }): Promise<OperationResult>;
  /** For readiness and dashboards: whether calls currently fail fast. */
  readonly isAvailable: boolean;
  close(): Promise<void>;
}

/**
 * The processor gave no decision. `isCircuitOpen`: it was not even asked (known to be down), so
 * nothing happened there; otherwise the outcome is unknown (timeout, 5xx, network).
 */
export class ProcessorUnavailableError extends Error {
  readonly isCircuitOpen: boolean;

  constructor(message: string, options: { isCircuitOpen: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'ProcessorUnavailableError';
    this.isCircuitOpen = options.isCircuitOpen;
  }
}
