import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EPOCH,
  addAmount,
  bucketCount,
  bucketStart,
  bucketStarts,
  conversionRate,
  moneyList,
  parseRange,
} from './analytics-query';

const now = new Date('2026-02-01T00:00:00.000Z');

describe('parseRange', () => {
  it('defaults to [epoch, now)', () => {
    expect(parseRange({}, now)).toEqual({ ok: true, range: { from: EPOCH, to: now } });
  });

  it('accepts RFC 3339 date-times with an offset', () => {
    const parsed = parseRange(
      { from: '2026-01-01T02:00:00+02:00', to: '2026-01-02T00:00:00Z' },
      now,
    );
    expect(parsed).toEqual({
      ok: true,
      range: { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-01-02T00:00:00Z') },
    });
  });

  it('names every invalid parameter', () => {
    const parsed = parseRange({ from: 'yesterday', to: '2026-01-01' }, now);
    if (parsed.ok) throw new Error('accepted an invalid range');
    expect(parsed.errors.map((issue) => issue.path)).toEqual([
      '/querystring/from',
      '/querystring/to',
    ]);
    for (const issue of parsed.errors) expect(issue.message).toContain('RFC 3339');
    expect(parseRange({ from: '2026-13-01T00:00:00Z' }, now).ok).toBe(false);
  });

  it('refuses an empty or inverted range', () => {
    const at = '2026-01-01T00:00:00Z';
    expect(parseRange({ from: at, to: at }, now)).toEqual({
      ok: false,
      errors: [{ path: '/querystring/from', message: 'must be before to' }],
    });
  });
});

describe('buckets', () => {
  it('starts at the bucket holding from and covers the range', () => {
    const range = { from: new Date('2026-01-01T10:30:00Z'), to: new Date('2026-01-01T13:00:00Z') };
    expect(bucketStarts(range, 'hour').map((d) => d.toISOString())).toEqual([
      '2026-01-01T10:00:00.000Z',
      '2026-01-01T11:00:00.000Z',
      '2026-01-01T12:00:00.000Z',
    ]);
    expect(bucketCount(range, 'hour')).toBe(3);
  });

  it('counts as many buckets as it builds, and each holds its instants', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.integer({ min: 1, max: 200 * 3_600_000 }),
        fc.constantFrom('hour' as const, 'day' as const),
        (start, length, interval) => {
          const range = { from: new Date(start), to: new Date(start + length) };
          const starts = bucketStarts(range, interval);
          expect(starts.length).toBe(bucketCount(range, interval));
          expect(starts[0]?.getTime()).toBe(bucketStart(range.from, interval).getTime());
          expect(starts[0]!.getTime()).toBeLessThanOrEqual(start);
        },
      ),
    );
  });
});

describe('money lists', () => {
  it('sums per currency, sorted, without zeros', () => {
    const totals = new Map<string, number>();
    addAmount(totals, 'USD', 100);
    addAmount(totals, 'EUR', 50);
    addAmount(totals, 'USD', 25);
    addAmount(totals, 'GBP', 0);
    expect(moneyList(totals)).toEqual([
      { amount: 50, currency: 'EUR' },
      { amount: 125, currency: 'USD' },
    ]);
  });

  it('conversionRate is confirmed / placed with 4 decimals, 0 for nothing placed', () => {
    expect(conversionRate(0, 0)).toBe(0);
    expect(conversionRate(3, 2)).toBe(0.6667);
  });
});
