import { AppError, type FieldIssue } from '@bazaar/errors';

// The service's failures, worded once. Codes come from the shared catalog; where clients may want to
// tell causes apart without parsing `detail`, a stable `reason` extension member says which.

export function invalidFields(errors: readonly FieldIssue[]): AppError {
  const noun = errors.length === 1 ? 'field' : 'fields';
  return new AppError('VALIDATION_FAILED', `The request has ${errors.length} invalid ${noun}.`, {
    details: { errors },
  });
}

export function emailTaken(): AppError {
  return new AppError('CONFLICT', 'An account with this email already exists.', {
    details: { reason: 'email_taken' },
  });
}

/** Wrong email or password: one answer for both, so the route does not reveal which accounts exist. */
export function invalidCredentials(): AppError {
  return new AppError('UNAUTHENTICATED', 'The email or password is wrong.', {
    details: { reason: 'invalid_credentials' },
  });
}

export function tooManyLoginFailures(retryAfterSeconds: number): AppError {
  return new AppError(
    'RATE_LIMITED',
    'Too many failed logins for this account from this address; try again later.',
    { retryAfterSeconds, details: { reason: 'login_throttled' } },
  );
}

/** Why a refresh token is refused; clients only need to know that they must log in again. */
export type RefreshRefusal = 'unknown' | 'expired' | 'revoked' | 'reused';

export function invalidRefreshToken(reason: RefreshRefusal): AppError {
  return new AppError('UNAUTHENTICATED', 'The refresh token is not valid; log in again.', {
    details: { reason: `refresh_token_${reason}` },
  });
}

export function invalidAccessToken(cause?: unknown): AppError {
  return new AppError('UNAUTHENTICATED', 'The access token is missing, invalid or expired.', {
    cause,
    details: { reason: 'invalid_token' },
  });
}

export function invalidClientCredentials(): AppError {
  return new AppError('UNAUTHENTICATED', 'The client id or secret is wrong.', {
    details: { reason: 'invalid_client' },
  });
}

export function audienceNotAllowed(audience: string): AppError {
  return new AppError('FORBIDDEN', `This client may not obtain tokens for "${audience}".`, {
    details: { reason: 'audience_not_allowed' },
  });
}

export function adminOnly(): AppError {
  return new AppError('FORBIDDEN', 'This operation is reserved to administrators.');
}

export function userNotFound(): AppError {
  return new AppError('NOT_FOUND', 'The user does not exist.');
}
