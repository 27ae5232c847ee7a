import { AppError } from '@bazaar/errors';
import type { PaymentRefusal } from './payment';

// The service's failures, worded once. Codes come from the shared catalog; a stable `reason`
// extension member tells causes apart where clients may need it.

export function paymentNotFound(): AppError {
  return new AppError('NOT_FOUND', 'The payment does not exist.');
}

const refusalDetails: Record<PaymentRefusal, ['CONFLICT' | 'UNPROCESSABLE', string]> = {
  not_capturable: ['CONFLICT', 'Only an authorized payment can be captured.'],
  not_voidable: ['CONFLICT', 'Only an authorized payment can be voided.'],
  not_refundable: ['CONFLICT', 'Only a captured payment can be refunded.'],
  currency_mismatch: ['UNPROCESSABLE', 'The refund currency differs from the payment currency.'],
  refund_exceeds_captured: [
    'UNPROCESSABLE',
    'The refund exceeds what is left to refund (captured minus refunded and pending refunds).',
  ],
  invalid_amount: ['UNPROCESSABLE', 'The refund amount must be a positive integer.'],
};

export function paymentRefused(refusal: PaymentRefusal): AppError {
  const [code, detail] = refusalDetails[refusal];
  return new AppError(code, detail, { details: { reason: refusal } });
}

export function processorRefusedRefund(message: string): AppError {
  return new AppError('UNPROCESSABLE', `The processor refused the refund: ${message}`, {
    details: { reason: 'processor_refused' },
  });
}

/** The processor could not be reached: nothing is lost, retry with the same Idempotency-Key. */
export function processorUnavailable(cause: unknown): AppError {
  return new AppError(
    'SERVICE_UNAVAILABLE',
    'The card processor is unavailable; retry with the same Idempotency-Key.',
    { cause, retryAfterSeconds: 5, details: { reason: 'processor_unavailable' } },
  );
}

export function idempotencyKeyReused(): AppError {
  return new AppError(
    'IDEMPOTENCY_KEY_REUSED',
    'This Idempotency-Key was already used with a different request body.',
  );
}

export function idempotencyKeyInUse(): AppError {
  return new AppError(
    'IDEMPOTENCY_KEY_IN_USE',
    'A request with this Idempotency-Key is still being processed; retry later.',
    { retryAfterSeconds: 1 },
  );
}
