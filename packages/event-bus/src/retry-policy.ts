/** How a consumer retries a failed message before it gives up and dead-letters it. */
export interface RetryPolicy {
  /**
   * The wait before each retry: the first failure waits `delaysMs[0]`, the second `delaysMs[1]`, …;
   * further failures reuse the last tier. Each distinct delay is one delay queue.
   */
  readonly delaysMs: readonly number[];
  /** Attempts in total (the first delivery counts), after which the message goes to the DLQ. */
  readonly maxAttempts: number;
}

/** 1 s, 5 s, 30 s, then the DLQ: four attempts over about 36 s. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  delaysMs: Object.freeze([1000, 5000, 30_000]),
  maxAttempts: 4,
});

/** What to do with a message whose handling failed. */
export type FailureDecision =
  | { readonly action: 'retry'; readonly delayMs: number; readonly nextAttempt: number }
  | { readonly action: 'dead-letter' };

/** Throws a `RangeError` describing what is wrong with a policy. */
export function assertRetryPolicy(policy: RetryPolicy): void {
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be an integer ≥ 1, got ${policy.maxAttempts}`);
  }
  if (policy.maxAttempts > 1 && policy.delaysMs.length === 0) {
    throw new RangeError('delaysMs must name at least one delay when maxAttempts > 1');
  }
  for (const delay of policy.delaysMs) {
    if (!Number.isInteger(delay) || delay <= 0) {
      throw new RangeError(`every retry delay must be a positive integer of ms, got ${delay}`);
    }
  }
}

/**
 * The decision after attempt number `attempt` (1 for the first delivery) failed: the next delay tier
 * while attempts remain, the DLQ once `maxAttempts` have failed.
 */
export function decideAfterFailure(attempt: number, policy: RetryPolicy): FailureDecision {
  if (attempt >= policy.maxAttempts) return { action: 'dead-letter' };
  const tier = Math.min(Math.max(attempt, 1) - 1, policy.delaysMs.length - 1);
  const delayMs = policy.delaysMs[tier];
  if (delayMs === undefined) return { action: 'dead-letter' };
  return { action: 'retry', delayMs, nextAttempt: Math.max(attempt, 1) + 1 };
}
