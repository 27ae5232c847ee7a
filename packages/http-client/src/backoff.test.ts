import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, parseRetryAfterMs } from './backoff';

const delays = fc.record({
  baseDelayMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
  maxDelayMs: fc.double({ min: 0, max: 1e7, noNaN: true }),
});
const randoms = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

describe('backoffDelayMs', () => {
  it('always lies within [0, min(max, base * 2^n)]', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2000 }), delays, randoms, (retryIndex, options, random) => {
        const delay = backoffDelayMs(retryIndex, options, () => random);
        const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** retryIndex);
        expect(Number.isFinite(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(Number.isNaN(cap) ? 0 : cap);
      }),
    );
  });

  it('spreads over the whole window: the random fraction scales the cap', () => {
    fc.assert(
      fc.property(fc.nat({ max: 30 }), delays, randoms, (retryIndex, options, random) => {
        const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** retryIndex);
        expect(backoffDelayMs(retryIndex, options, () => random)).toBeCloseTo(cap * random, 6);
      }),
    );
  });

  it('doubles the window per retry until the maximum', () => {
    const options = { baseDelayMs: 100, maxDelayMs: 1000 };
    const almostOne = () => 0.999_999;
    const windows = [0, 1, 2, 3, 4, 5].map((retry) =>
      Math.round(backoffDelayMs(retry, options, almostOne)),
    );
    expect(windows).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('uses Math.random by default', () => {
    const samples = Array.from({ length: 50 }, () =>
      backoffDelayMs(3, { baseDelayMs: 100, maxDelayMs: 10_000 }),
    );
    expect(new Set(samples).size).toBeGreaterThan(1);
    expect(Math.max(...samples)).toBeLessThanOrEqual(800);
  });
});

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it.each([
    ['0', 0],
    ['3', 3000],
    [' 120 ', 120_000],
    [['2', '9'], 2000],
    ['Wed, 01 Jan 2025 00:00:10 GMT', 10_000],
    ['Tue, 31 Dec 2024 23:59:00 GMT', 0],
  ] as const)('reads %j as %i ms', (value, expected) => {
    expect(parseRetryAfterMs(value as string | string[], now)).toBe(expected);
  });

  it.each([undefined, '', '-1', '1.5', 'soon'])('ignores %j', (value) => {
    expect(parseRetryAfterMs(value, now)).toBeUndefined();
  });
});
