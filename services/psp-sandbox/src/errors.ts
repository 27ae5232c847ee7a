import { AppError } from '@bazaar/errors';

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
