import { AppError, type FieldIssue } from '@bazaar/errors';

// The service's failures, worded once. Codes come from the shared catalog; a stable `reason` extension
// member tells causes apart where clients may want to.

export function invalidFields(errors: readonly FieldIssue[]): AppError {
  const noun = errors.length === 1 ? 'field' : 'fields';
  return new AppError('VALIDATION_FAILED', `The request has ${errors.length} invalid ${noun}.`, {
    details: { errors },
  });
}

export function orderNotFound(): AppError {
  return new AppError('NOT_FOUND', 'The order does not exist.');
}

export function productNotFound(): AppError {
  return new AppError('NOT_FOUND', 'The product does not exist.');
}

export function outOfStock(productIds: readonly string[]): AppError {
  return new AppError('CONFLICT', 'Not enough stock for some of the items.', {
    details: { reason: 'out_of_stock', productIds },
  });
}

export function unprocessableOrder(errors: readonly FieldIssue[]): AppError {
  return new AppError('UNPROCESSABLE', 'The order cannot be placed as requested.', {
    details: { errors },
  });
}

export function idempotencyKeyReused(): AppError {
  return new AppError(
    'IDEMPOTENCY_KEY_REUSED',
    'This Idempotency-Key was used with a different request body.',
  );
}

export function idempotencyKeyInUse(): AppError {
  return new AppError(
    'IDEMPOTENCY_KEY_IN_USE',
    'A request with this Idempotency-Key is still being processed; retry later.',
    { retryAfterSeconds: 1 },
  );
}

export function lockBusy(what: string, cause?: unknown): AppError {
  return new AppError('SERVICE_UNAVAILABLE', `The ${what} is busy; retry later.`, {
    retryAfterSeconds: 1,
    cause,
    details: { reason: 'lock_busy' },
  });
}

export function invalidCursor(): AppError {
  return invalidFields([{ path: '/querystring/cursor', message: 'is not a cursor of this list' }]);
}
