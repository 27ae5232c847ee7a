// Request parameters of the aggregate endpoints, checked before any query runs; money lists.
import type { FieldIssue } from '@bazaar/errors';
import type { Money } from '@bazaar/contracts';
import type { Interval, TimeRange } from './warehouse';

/** Buckets one time series may have: 31 days of hours, ~2.7 years of days. */
export const MAX_BUCKETS = 1_000;
export const MAX_TOP_PRODUCTS = 100;

const HOUR_MS = 3_600_000;
const intervalMs: Record<Interval, number> = { hour: HOUR_MS, day: 24 * HOUR_MS };

/** When `from` is omitted: the beginning of time for Bazaar (no event can be older). */
export const EPOCH = new Date('2000-01-01T00:00:00.000Z');

// RFC 3339 date-time with an explicit offset (Z or ±hh:mm): a bare date or local time is ambiguous.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

export type RangeResult =
  | { readonly ok: true; readonly range: TimeRange }
  | { readonly ok: false; readonly errors: FieldIssue[] };

function parseInstant(
  value: string | undefined,
  name: string,
  errors: FieldIssue[],
): Date | undefined {
  if (value === undefined) return undefined;
  const time = RFC3339.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(time.getTime())) {
    errors.push({
      path: `/querystring/${name}`,
      message: 'must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T00:00:00Z',
    });
    return undefined;
  }
  return time;
}

/** `from` defaults to {@link EPOCH}, `to` to now; `from` must be before `to`. */
export function parseRange(
  query: { readonly from?: string | undefined; readonly to?: string | undefined },
  now: Date,
): RangeResult {
  const errors: FieldIssue[] = [];
  const from = parseInstant(query.from, 'from', errors) ?? EPOCH;
  const to = parseInstant(query.to, 'to', errors) ?? now;
  if (errors.length === 0 && from.getTime() >= to.getTime()) {
    errors.push({ path: '/querystring/from', message: 'must be before to' });
  }
  return errors.length === 0 ? { ok: true, range: { from, to } } : { ok: false, errors };
}

/** The start of the bucket that holds `time` (UTC). */
export function bucketStart(time: Date, interval: Interval): Date {
  const size = intervalMs[interval];
  return new Date(Math.floor(time.getTime() / size) * size);
}

/** Every bucket start from the one holding `from` up to (excluding) `to`. */
export function bucketStarts(range: TimeRange, interval: Interval): Date[] {
  const size = intervalMs[interval];
  const starts: Date[] = [];
  for (let t = bucketStart(range.from, interval).getTime(); t < range.to.getTime(); t += size) {
    starts.push(new Date(t));
  }
  return starts;
}

/** How many buckets the range spans, without building them. */
export function bucketCount(range: TimeRange, interval: Interval): number {
  const size = intervalMs[interval];
  const first = bucketStart(range.from, interval).getTime();
  return Math.ceil((range.to.getTime() - first) / size);
}

/** Amounts per currency → a Money list sorted by currency, without zero entries. */
export function moneyList(amounts: ReadonlyMap<string, number>): Money[] {
  return [...amounts.entries()]
    .filter(([, amount]) => amount !== 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([currency, amount]) => ({ amount, currency }));
}

/** Adds `amount` to `currency` in `totals`. */
export function addAmount(totals: Map<string, number>, currency: string, amount: number): void {
  totals.set(currency, (totals.get(currency) ?? 0) + amount);
}

/** confirmed / placed, 4 decimals; 0 when nothing was placed. */
export function conversionRate(placed: number, confirmed: number): number {
  return placed === 0 ? 0 : Math.round((confirmed / placed) * 10_000) / 10_000;
}
