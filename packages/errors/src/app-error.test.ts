import { describe, expect, it } from 'vitest';
import { AppError, isAppError } from './app-error';

describe('AppError', () => {
  it('takes status and title from the catalog', () => {
    const error = new AppError('IDEMPOTENCY_KEY_REUSED', 'The key was used with another body');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('AppError');
    expect(error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(error.status).toBe(422);
    expect(error.title).toBe('Idempotency key reused');
    expect(error.message).toBe('The key was used with another body');
    expect(error.stack).toContain('app-error.test.ts');
  });

  it('uses the catalog title as message when none is given', () => {
    expect(new AppError('FORBIDDEN').message).toBe('Forbidden');
  });

  it('preserves the cause as an ES2022 error cause', () => {
    const cause = new Error('ECONNRESET');
    const error = new AppError('UPSTREAM_FAILED', 'The card processor failed', { cause });
    expect(error.cause).toBe(cause);
    expect(Object.hasOwn(new AppError('INTERNAL'), 'cause')).toBe(false);
  });

  it('keeps details and retryAfterSeconds', () => {
    const error = new AppError('RATE_LIMITED', undefined, {
      details: { limit: 10 },
      retryAfterSeconds: 30,
    });
    expect(error.details).toEqual({ limit: 10 });
    expect(error.retryAfterSeconds).toBe(30);
  });

  it('refuses a retryAfterSeconds that is not a non-negative integer', () => {
    expect(() => new AppError('RATE_LIMITED', undefined, { retryAfterSeconds: -1 })).toThrow(
      RangeError,
    );
    expect(() => new AppError('RATE_LIMITED', undefined, { retryAfterSeconds: 1.5 })).toThrow(
      RangeError,
    );
  });
});

describe('isAppError', () => {
  it('recognises AppErrors and nothing else', () => {
    expect(isAppError(new AppError('CONFLICT'))).toBe(true);
    expect(isAppError(new Error('CONFLICT'))).toBe(false);
    expect(isAppError({ code: 'CONFLICT', status: 409 })).toBe(false);
    expect(isAppError(null)).toBe(false);
    expect(isAppError('CONFLICT')).toBe(false);
  });

  it('narrows by code when codes are given', () => {
    const error: unknown = new AppError('CIRCUIT_OPEN');
    expect(isAppError(error, 'CIRCUIT_OPEN', 'UPSTREAM_TIMEOUT')).toBe(true);
    expect(isAppError(error, 'UPSTREAM_TIMEOUT')).toBe(false);
  });

  it('recognises an AppError from another copy of the module by its brand', () => {
    const foreign = Object.assign(new Error('gone'), {
      code: 'NOT_FOUND',
      [Symbol.for('bazaar.errors.AppError')]: true,
    });
    expect(isAppError(foreign, 'NOT_FOUND')).toBe(true);
    const forged = Object.assign(new Error('x'), {
      code: 'NOT_IN_CATALOG',
      [Symbol.for('bazaar.errors.AppError')]: true,
    });
    expect(isAppError(forged)).toBe(false);
  });
});
