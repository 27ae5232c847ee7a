/** How long to wait between attempts. */
export interface BackoffOptions {
  /** The cap of the first retry's delay; each further retry doubles the cap. */
  readonly baseDelayMs: number;
  /** The cap no delay ever exceeds. */
  readonly maxDelayMs: number;
}

/**
 * The delay before retry number `retryIndex` (0 for the first retry), with "full jitter": a uniformly
 * random duration in `[0, min(maxDelayMs, baseDelayMs * 2^retryIndex))`. Spreading retries over the whole
 * window keeps a fleet of clients from retrying in lockstep after a shared failure.
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 *
 * @param random - a source of numbers in `[0, 1)`; `Math.random` unless a test fixes it
 */
export function backoffDelayMs(
  retryIndex: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  // 0 * 2^1100 would be 0 * Infinity = NaN, so a zero base is handled before the power.
  const cap =
    options.baseDelayMs <= 0
      ? 0
      : Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** retryIndex);
  return Math.max(0, cap) * random();
}

/**
 * Reads a `Retry-After` header (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date.
 *
 * @returns the delay in milliseconds (0 for a date in the past), or `undefined` when absent or invalid
 */
export function parseRetryAfterMs(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form starts with the day name; without this check V8 reads "-1" as a date.
  const date = /^[A-Za-z]{3}/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
