// Request parameters of the aggregate endpoints, checked before any query runs; money lists.
import type { FieldIssue } from '@bazaar/errors';
import type { Money } from '@bazaar/contracts';
import type { Interval, Summary, TimeBucket, TimeRange } from './warehouse';

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

/** A result row as an adapter's driver returns it. */
type Row = Readonly<Record<string, unknown>>;

/** How an adapter reads its driver's values: numbers (bigint, BigQuery numerics) and bucket instants. */
export interface RowReader {
  readonly toNumber: (value: unknown) => number;
  /** A bucket's start as an ISO-8601 instant (`…T00:00:00.000Z`). */
  readonly instant: (value: unknown) => string;
}

/**
 * The summary from the adapters' three queries: the event count, order counts (`placed`,
 * `confirmed`, `cancelled`), and per-currency payment rows (`currency`, `captured`, `refunded`,
 * `failed`). Revenue is captured minus refunded.
 */
export function summaryFromRows(
  read: RowReader,
  events: Row | undefined,
  orders: Row | undefined,
  payments: readonly Row[],
): Summary {
  const captured = new Map<string, number>();
  const refunded = new Map<string, number>();
  const revenue = new Map<string, number>();
  let paymentsFailed = 0;
  for (const row of payments) {
    const currency = String(row.currency);
    addAmount(captured, currency, read.toNumber(row.captured));
    addAmount(refunded, currency, read.toNumber(row.refunded));
    addAmount(revenue, currency, read.toNumber(row.captured) - read.toNumber(row.refunded));
    paymentsFailed += read.toNumber(row.failed);
  }
  return {
    events: read.toNumber(events?.n),
    ordersPlaced: read.toNumber(orders?.placed),
    ordersConfirmed: read.toNumber(orders?.confirmed),
    ordersCancelled: read.toNumber(orders?.cancelled),
    paymentsFailed,
    revenue: moneyList(revenue),
    captured: moneyList(captured),
    refunded: moneyList(refunded),
  };
}

/**
 * Every bucket of `range`, empty ones included, from order rows (`bucket`, `placed`, `confirmed`,
 * `cancelled`) and net revenue rows (`bucket`, `currency`, `net`).
 */
export function seriesFromRows(
  read: RowReader,
  range: TimeRange,
  interval: Interval,
  orders: readonly Row[],
  payments: readonly Row[],
): TimeBucket[] {
  const byBucket = new Map<string, Row>();
  for (const row of orders) byBucket.set(read.instant(row.bucket), row);
  const revenue = new Map<string, Map<string, number>>();
  for (const row of payments) {
    const key = read.instant(row.bucket);
    const totals = revenue.get(key) ?? new Map<string, number>();
    addAmount(totals, String(row.currency), read.toNumber(row.net));
    revenue.set(key, totals);
  }
  return bucketStarts(range, interval).map((start): TimeBucket => {
    const key = start.toISOString();
    const row = byBucket.get(key);
    return {
      start: key,
      ordersPlaced: read.toNumber(row?.placed),
      ordersConfirmed: read.toNumber(row?.confirmed),
      ordersCancelled: read.toNumber(row?.cancelled),
      revenue: moneyList(revenue.get(key) ?? new Map()),
    };
  });
}
