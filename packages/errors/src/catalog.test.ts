import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCatalog, isErrorCode, problemTypeOf, statusOf, type ErrorCode } from './catalog';

const codes = Object.keys(errorCatalog) as ErrorCode[];

describe('errorCatalog', () => {
  it('names every code in UPPER_SNAKE with an error status and a title', () => {
    for (const code of codes) {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      const { status, title } = errorCatalog[code];
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
      expect(title.trim(), code).not.toBe('');
    }
  });

  it('maps the agreed codes to their statuses', () => {
    expect(Object.fromEntries(codes.map((code) => [code, statusOf(code)]))).toMatchObject({
      VALIDATION_FAILED: 400,
      UNAUTHENTICATED: 401,
      CARD_DECLINED: 402,
      INSUFFICIENT_FUNDS: 402,
      FORBIDDEN: 403,
      NOT_FOUND: 404,
      ROUTE_NOT_FOUND: 404,
      METHOD_NOT_ALLOWED: 405,
      REQUEST_TIMEOUT: 408,
      CONFLICT: 409,
      IDEMPOTENCY_KEY_IN_USE: 409,
      IDEMPOTENCY_KEY_REUSED: 422,
      PAYLOAD_TOO_LARGE: 413,
      UNSUPPORTED_MEDIA_TYPE: 415,
      UNPROCESSABLE: 422,
      RATE_LIMITED: 429,
      CLIENT_CLOSED_REQUEST: 499,
      INTERNAL: 500,
      UPSTREAM_FAILED: 502,
      SERVICE_UNAVAILABLE: 503,
      CIRCUIT_OPEN: 503,
      SHUTTING_DOWN: 503,
      UPSTREAM_TIMEOUT: 504,
    });
  });

  it('gives every code a distinct kebab-case problem type URI', () => {
    expect(problemTypeOf('IDEMPOTENCY_KEY_REUSED')).toBe(
      'https://bazaar.dev/problems/idempotency-key-reused',
    );
    const types = codes.map(problemTypeOf);
    expect(new Set(types).size).toBe(codes.length);
  });

  it('recognises codes of the catalog only', () => {
    expect(isErrorCode('NOT_FOUND')).toBe(true);
    expect(isErrorCode('not_found')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(404)).toBe(false);
  });

  it('is documented row by row in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const code of codes) {
      const row = new RegExp(`^\\| +\`${code}\` +\\| +${statusOf(code)} +\\|`, 'm');
      expect(readme, `README row for ${code}`).toMatch(row);
    }
  });
});
