/** The processor operations a fault can target. */
export const operations = ['authorize', 'capture', 'void', 'refund'] as const;
export type Operation = (typeof operations)[number];

/**
 * How a request goes wrong, as real processors do:
 * - `fail_before`: 503 without doing anything;
 * - `fail_after`: the operation is performed and its reply stored under the Idempotency-Key, but the
 *   caller gets a 503 — a retry with the same key receives the stored reply, never a second charge;
 * - `delay_after`: performed and stored, answered only after `delayMs` (the caller's deadline passes);
 * - `latency`: the request waits `delayMs` before being processed normally.
 */
export type FaultMode = 'fail_before' | 'fail_after' | 'delay_after' | 'latency';

export interface FaultRule {
  readonly mode: FaultMode;
  /** Which operation it hits; every one when absent. */
  readonly operation?: Operation;
  /** How many requests it hits; every request until cleared when absent. */
  readonly count?: number;
  /** For `delay_after` and `latency`. */
  readonly delayMs?: number;
}

/** A fault picked for one request. */
export interface Fault {
  readonly mode: FaultMode;
  readonly delayMs: number;
}

/** The faults armed for the next requests, first armed first applied. In memory, per instance. */
export interface FaultPlan {
  arm(rule: FaultRule): void;
  clear(): void;
  /** Takes the fault for one request of `operation` (consuming one count), or none. */
  take(operation: Operation): Fault | undefined;
  readonly rules: readonly FaultRule[];
}

export function createFaultPlan(): FaultPlan {
  let rules: FaultRule[] = [];
  return {
    arm(rule) {
      rules.push(rule);
    },
    clear() {
      rules = [];
    },
    take(operation) {
      const index = rules.findIndex(
        (rule) => rule.operation === undefined || rule.operation === operation,
      );
      const rule = rules[index];
      if (rule === undefined) return undefined;
      if (rule.count !== undefined) {
        if (rule.count <= 1) rules.splice(index, 1);
        else rules[index] = { ...rule, count: rule.count - 1 };
      }
      return { mode: rule.mode, delayMs: rule.delayMs ?? 0 };
    },
    get rules() {
      return rules;
    },
  };
}
