import { AppError, type FieldIssue } from '@bazaar/errors';

// The service's failures, worded once. Codes come from the shared catalog; where a client may want
// to tell causes apart without parsing `detail`, a stable `reason` extension member says which.

export function invalidFields(errors: readonly FieldIssue[]): AppError {
  const noun = errors.length === 1 ? 'field' : 'fields';
  return new AppError('VALIDATION_FAILED', `The request has ${errors.length} invalid ${noun}.`, {
    details: { errors },
  });
}

export function invalidCursor(): AppError {
  return invalidFields([{ path: '/querystring/cursor', message: 'is not a cursor of this list' }]);
}

/** Someone else's entry answers the same as a missing one: ids are not an oracle. */
export function notificationNotFound(): AppError {
  return new AppError('NOT_FOUND', 'The notification does not exist.');
}

export function invalidWebhookToken(): AppError {
  return new AppError('UNAUTHENTICATED', 'The webhook credential is missing or wrong.', {
    details: { reason: 'invalid_webhook_token' },
  });
}

export function idempotencyKeyRequired(): AppError {
  return invalidFields([
    { path: '/headers/idempotency-key', message: 'is required (1 to 128 visible characters)' },
  ]);
}

export function deliveryNotFound(): AppError {
  return new AppError('NOT_FOUND', 'The delivery does not exist.');
}

export function deliveryNotDead(): AppError {
  return new AppError('CONFLICT', 'Only a dead-lettered delivery can be retried.', {
    details: { reason: 'delivery_not_dead' },
  });
}

/** The recipient's address could not be found (users answered 404): retrying will not help. */
export class RecipientUnknownError extends Error {
  override readonly name = 'RecipientUnknownError';
}
