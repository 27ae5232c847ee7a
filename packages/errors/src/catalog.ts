/** What the catalog records for every error code. */
export interface ErrorCatalogEntry {
  /** The HTTP status a reply carrying this code uses. */
  readonly status: number;
  /** A short, human-readable summary that never changes between occurrences (RFC 9457 §3.1.3). */
  readonly title: string;
}

/**
 * Every error code Bazaar emits, with its HTTP status and title: the one table that maps codes to
 * statuses. Codes are stable and documented (README.md); clients branch on `code`, never on `title`
 * or `detail`. Add a code here rather than reusing one with a different meaning.
 */
export const errorCatalog = {
  BAD_REQUEST: { status: 400, title: 'Malformed request' },
  VALIDATION_FAILED: { status: 400, title: 'Validation failed' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  CARD_DECLINED: { status: 402, title: 'Card declined' },
  INSUFFICIENT_FUNDS: { status: 402, title: 'Insufficient funds' },
  FORBIDDEN: { status: 403, title: 'Forbidden' },
  NOT_FOUND: { status: 404, title: 'Resource not found' },
  ROUTE_NOT_FOUND: { status: 404, title: 'Route not found' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request timeout' },
  CONFLICT: { status: 409, title: 'Conflict' },
  IDEMPOTENCY_KEY_IN_USE: { status: 409, title: 'Idempotency key in use' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  UNPROCESSABLE: { status: 422, title: 'Unprocessable request' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency key reused' },
  INVALID_CARD_TOKEN: { status: 422, title: 'Invalid card token' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  // nginx's non-standard 499: the client went away before the answer; only logs and metrics see it.
  CLIENT_CLOSED_REQUEST: { status: 499, title: 'Client closed request' },
  INTERNAL: { status: 500, title: 'Internal error' },
  UPSTREAM_FAILED: { status: 502, title: 'Upstream failed' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  CIRCUIT_OPEN: { status: 503, title: 'Circuit open' },
  SHUTTING_DOWN: { status: 503, title: 'Shutting down' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timeout' },
} as const satisfies Readonly<Record<string, ErrorCatalogEntry>>;

/** A stable, UPPER_SNAKE error code: one of the keys of {@link errorCatalog}. */
export type ErrorCode = keyof typeof errorCatalog;

/** Base of every problem `type` URI; the path is the kebab-case code. */
export const PROBLEM_TYPE_BASE = 'https://bazaar.dev/problems/';

const errorCodes = new Set<string>(Object.keys(errorCatalog));

/** Whether `value` is a code of the catalog. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && errorCodes.has(value);
}

/** The HTTP status of `code`. */
export function statusOf(code: ErrorCode): number {
  return errorCatalog[code].status;
}

/** The stable problem `type` URI of `code`, e.g. `https://bazaar.dev/problems/validation-failed`. */
export function problemTypeOf(code: ErrorCode): string {
  return PROBLEM_TYPE_BASE + code.toLowerCase().replaceAll('_', '-');
}
