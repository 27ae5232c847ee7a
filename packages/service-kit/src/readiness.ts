/**
 * One dependency `/readyz` verifies, e.g. `{ name: 'postgres', check: (signal) => pool.query('select 1') }`.
 * The check passes when its promise resolves and fails when it rejects or outlives its deadline.
 */
export interface ReadinessCheck {
  /** Unique among the app's checks; the key in the `/readyz` reply. */
  readonly name: string;
  /** Probes the dependency; should stop when `signal` aborts at the deadline. */
  check(signal: AbortSignal): Promise<unknown>;
  /** The deadline of this check. Default {@link DEFAULT_CHECK_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/** How a check ended. */
export type CheckOutcome = 'ok' | 'failed' | 'timed out';

/** The result of one check run. */
export interface CheckResult {
  readonly name: string;
  readonly outcome: CheckOutcome;
  /** Why it failed, for logs only (messages of dependencies may hold internals). */
  readonly error?: unknown;
}

/** The deadline of a readiness check that does not set its own. */
export const DEFAULT_CHECK_TIMEOUT_MS = 1000;

class CheckTimeoutError extends Error {
  override readonly name = 'CheckTimeoutError';
}

async function runCheck(check: ReadinessCheck): Promise<CheckResult> {
  const timeoutMs = check.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const error = new CheckTimeoutError(`${check.name} did not answer within ${timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    // A check that throws synchronously is a failure too, not a crash of /readyz.
    await Promise.race([Promise.resolve().then(() => check.check(controller.signal)), deadline]);
    return { name: check.name, outcome: 'ok' };
  } catch (error) {
    const outcome = error instanceof CheckTimeoutError ? 'timed out' : 'failed';
    return { name: check.name, outcome, error };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs all checks concurrently, each against its own deadline; never rejects. */
export function runReadinessChecks(checks: readonly ReadinessCheck[]): Promise<CheckResult[]> {
  return Promise.all(checks.map(runCheck));
}

/** Throws when two checks share a name, since their results would overwrite each other. */
export function assertUniqueCheckNames(checks: readonly ReadinessCheck[]): void {
  const seen = new Set<string>();
  for (const { name } of checks) {
    if (seen.has(name)) throw new Error(`Two readiness checks are named "${name}"`);
    seen.add(name);
  }
}
