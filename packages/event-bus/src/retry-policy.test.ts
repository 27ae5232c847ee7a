import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertRetryPolicy, decideAfterFailure, DEFAULT_RETRY_POLICY } from './retry-policy';

describe('decideAfterFailure', () => {
  it('walks the default tiers 1 s, 5 s, 30 s and dead-letters after the fourth attempt', () => {
    expect(
      [1, 2, 3, 4].map((attempt) => decideAfterFailure(attempt, DEFAULT_RETRY_POLICY)),
    ).toEqual([
      { action: 'retry', delayMs: 1000, nextAttempt: 2 },
      { action: 'retry', delayMs: 5000, nextAttempt: 3 },
      { action: 'retry', delayMs: 30_000, nextAttempt: 4 },
      { action: 'dead-letter' },
    ]);
  });

  it('reuses the last tier when attempts outnumber the delays', () => {
    const policy = { delaysMs: [100, 200], maxAttempts: 5 };
    expect(decideAfterFailure(4, policy)).toEqual({
      action: 'retry',
      delayMs: 200,
      nextAttempt: 5,
    });
    expect(decideAfterFailure(5, policy)).toEqual({ action: 'dead-letter' });
  });

  it('dead-letters at once when only one attempt is allowed', () => {
    expect(decideAfterFailure(1, { delaysMs: [], maxAttempts: 1 })).toEqual({
      action: 'dead-letter',
    });
  });

  it('never exceeds maxAttempts, and delays never shrink from one attempt to the next', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 60_000 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 10 }),
        (delays, maxAttempts) => {
          const policy = { delaysMs: [...delays].sort((a, b) => a - b), maxAttempts };
          let attempt = 1;
          let previous = 0;
          for (;;) {
            const decision = decideAfterFailure(attempt, policy);
            if (decision.action === 'dead-letter') break;
            expect(decision.nextAttempt).toBe(attempt + 1);
            expect(decision.delayMs).toBeGreaterThanOrEqual(previous);
            previous = decision.delayMs;
            attempt = decision.nextAttempt;
          }
          expect(attempt).toBe(maxAttempts);
        },
      ),
    );
  });
});

describe('assertRetryPolicy', () => {
  it('accepts the default policy', () => {
    expect(() => assertRetryPolicy(DEFAULT_RETRY_POLICY)).not.toThrow();
  });

  it.each([
    [{ delaysMs: [1000], maxAttempts: 0 }, /maxAttempts/],
    [{ delaysMs: [1000], maxAttempts: 1.5 }, /maxAttempts/],
    [{ delaysMs: [], maxAttempts: 3 }, /at least one delay/],
    [{ delaysMs: [0], maxAttempts: 2 }, /positive integer/],
    [{ delaysMs: [-5], maxAttempts: 2 }, /positive integer/],
  ])('refuses %o', (policy, message) => {
    expect(() => assertRetryPolicy(policy)).toThrow(message);
  });
});
