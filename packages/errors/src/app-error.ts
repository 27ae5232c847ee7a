import { errorCatalog, isErrorCode, type ErrorCode } from './catalog';

/** One problem with one field of a request, as listed in a VALIDATION_FAILED reply. */
export interface FieldIssue {
  /** Where the problem is, e.g. `/body/amount/currency` or `headers.idempotency-key`. */
  readonly path: string;
  /** What is wrong, for a human. */
  readonly message: string;
}

/**
 * Extra, client-safe facts about an error. They become extension members of the problem reply;
 * `errors` is the conventional member for field issues of a validation failure.
 */
export interface ErrorDetails {
  readonly errors?: readonly FieldIssue[];
  readonly [member: string]: unknown;
}

/** Optional parts of an {@link AppError}. */
export interface AppErrorOptions {
  /** The error that led to this one; kept for logs, never sent to clients. */
  readonly cause?: unknown;
  /** Client-safe extension members of the problem reply. */
  readonly details?: ErrorDetails;
  /** When a client may retry (sent as `Retry-After`), e.g. for RATE_LIMITED or SHUTTING_DOWN. */
  readonly retryAfterSeconds?: number;
}

// A registry-wide brand, so an AppError is recognised even when two copies of this module are loaded
// (a bundled service next to a workspace package, or a test runner's module graph).
const brand: unique symbol = Symbol.for('bazaar.errors.AppError');

/**
 * An expected failure with a stable {@link ErrorCode}. Its `message` is the problem `detail` and is
 * shown to clients, so it must not contain secrets or internals; put those in `cause`.
 *
 * @example
 * ```ts
 * throw new AppError('NOT_FOUND', `Order ${id} does not exist`);
 * throw new AppError('UPSTREAM_FAILED', 'The card processor failed', { cause: error });
 * ```
 */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly [brand] = true;

  /**
   * @param code - a code of the catalog; it fixes the HTTP status and title.
   * @param message - a client-safe explanation of this occurrence; the catalog title when omitted.
   */
  constructor(code: ErrorCode, message?: string, options: AppErrorOptions = {}) {
    super(
      message ?? errorCatalog[code].title,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.details = options.details;
    if (
      options.retryAfterSeconds !== undefined &&
      !(Number.isInteger(options.retryAfterSeconds) && options.retryAfterSeconds >= 0)
    ) {
      throw new RangeError(
        `retryAfterSeconds must be a non-negative integer, got ${options.retryAfterSeconds}`,
      );
    }
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** The HTTP status of this error's code. */
  get status(): number {
    return errorCatalog[this.code].status;
  }

  /** The catalog title of this error's code. */
  get title(): string {
    return errorCatalog[this.code].title;
  }
}

/**
 * Whether `value` is an {@link AppError}, optionally with one of the given codes.
 *
 * @example
 * ```ts
 * if (isAppError(error, 'CIRCUIT_OPEN', 'UPSTREAM_TIMEOUT')) retryLater();
 * ```
 */
export function isAppError<C extends ErrorCode>(
  value: unknown,
  ...codes: C[]
): value is AppError & { readonly code: C } {
  if (typeof value !== 'object' || value === null) return false;
  if (!(value instanceof AppError) && (value as { [brand]?: unknown })[brand] !== true) {
    return false;
  }
  const { code } = value as { code: unknown };
  if (!isErrorCode(code)) return false;
  return codes.length === 0 || (codes as readonly ErrorCode[]).includes(code);
}
