import { AppError } from '@bazaar/errors';
import type { OperationRefusal } from './authorization';

export function cardDeclined(): AppError {
  return new AppError('CARD_DECLINED', 'The card was declined.');
}

export function insufficientFunds(): AppError {
  return new AppError('INSUFFICIENT_FUNDS', 'The card has insufficient funds.');
}

export function invalidCardToken(): AppError {
  return new AppError('INVALID_CARD_TOKEN', 'The card token is not known to the processor.');
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

export function authorizationNotFound(): AppError {
  return new AppError('NOT_FOUND', 'The authorization does not exist.');
}

/** A capture, void or refund the authorization's state or amounts do not allow. */
export function operationRefused(refusal: OperationRefusal): AppError {
  const messages: Record<OperationRefusal, [code: 'CONFLICT' | 'UNPROCESSABLE', detail: string]> = {
    not_capturable: ['CONFLICT', 'Only an approved, uncaptured authorization can be captured.'],
    not_voidable: ['CONFLICT', 'Only an approved, uncaptured authorization can be voided.'],
    not_refundable: ['CONFLICT', 'Only a captured authorization can be refunded.'],
    currency_mismatch: ['UNPROCESSABLE', 'The currency differs from the authorization’s.'],
    amount_too_large: [
      'UNPROCESSABLE',
      'The amount exceeds what the authorization allows (authorized, or captured minus refunded).',
    ],
  };
  const [code, detail] = messages[refusal];
  return new AppError(code, detail, { details: { reason: refusal } });
}

export function faultInjected(): AppError {
  return new AppError('SERVICE_UNAVAILABLE', 'Injected fault: the processor is unavailable.');
}

export function faultsDisabled(): AppError {
  return new AppError('NOT_FOUND', 'Fault injection is disabled on this instance.');
}
