import type { ServiceInstance } from '@bazaar/registry';

/** One instance as the balancer tracks it. */
export interface Target {
  readonly id: string;
  readonly address: string;
  outstanding: number;
  consecutiveFailures: number;
  ejectedUntil: number;
}

export interface UpstreamOptions {
  readonly algorithm: 'round-robin' | 'least-connections';
  /** Consecutive failures that eject an instance, and for how long. */
  readonly ejectAfterFailures: number;
  readonly ejectCooldownMs: number;
  /** Consecutive failed exchanges that open the breaker, and for how long. */
  readonly breakerFailures: number;
  readonly breakerOpenMs: number;
  readonly now?: () => number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * The instances of one upstream service: picks one per attempt (round robin or least outstanding
 * requests), ejects an instance after consecutive failures for a cooldown (passive health, as
 * Envoy's outlier detection), and guards the whole service with a circuit breaker.
 */
export class Upstream {
  readonly #options: UpstreamOptions;
  readonly #now: () => number;
  #targets: Target[] = [];
  #cursor = 0;
  #breaker: BreakerState = 'closed';
  #breakerFailures = 0;
  #openedAt = 0;
  #isTrialInFlight = false;

  constructor(options: UpstreamOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Replaces the instance set, keeping the health of instances that remain. */
  setInstances(instances: readonly Pick<ServiceInstance, 'id' | 'address'>[]): void {
    const previous = new Map(this.#targets.map((target) => [target.id, target]));
    this.#targets = instances.map(
      (instance) =>
        previous.get(instance.id) ?? {
          id: instance.id,
          address: instance.address,
          outstanding: 0,
          consecutiveFailures: 0,
          ejectedUntil: 0,
        },
    );
  }

  targets(): readonly Target[] {
    return this.#targets;
  }

  /**
   * The breaker's verdict for a new exchange: `allowed`, or the seconds until a trial is allowed.
   * In half-open state one trial exchange is let through at a time.
   */
  admit(): { allowed: true; isTrial: boolean } | { allowed: false; retryAfterSeconds: number } {
    if (this.#breaker === 'open') {
      const remaining = this.#openedAt + this.#options.breakerOpenMs - this.#now();
      if (remaining > 0) return { allowed: false, retryAfterSeconds: Math.ceil(remaining / 1000) };
      this.#breaker = 'half-open';
    }
    if (this.#breaker === 'half-open') {
      if (this.#isTrialInFlight) return { allowed: false, retryAfterSeconds: 1 };
      this.#isTrialInFlight = true;
      return { allowed: true, isTrial: true };
    }
    return { allowed: true, isTrial: false };
  }

  /** Records the outcome of a whole exchange (after retries) for the breaker. */
  recordExchange(isSuccess: boolean, isTrial: boolean): void {
    if (isTrial) this.#isTrialInFlight = false;
    if (isSuccess) {
      this.#breaker = 'closed';
      this.#breakerFailures = 0;
      return;
    }
    this.#breakerFailures += 1;
    if (this.#breaker === 'half-open' || this.#breakerFailures >= this.#options.breakerFailures) {
      this.#breaker = 'open';
      this.#openedAt = this.#now();
    }
  }

  /**
   * Ends an exchange that says nothing about the service (its client went away first): a trial
   * slot is freed, the breaker's count is left as it was.
   */
  abandonExchange(isTrial: boolean): void {
    if (isTrial) this.#isTrialInFlight = false;
  }

  breakerState(): BreakerState {
    return this.#breaker;
  }

  /**
   * Picks a target not in `exclude`. Ejected targets are skipped unless every candidate is ejected
   * (then the least recently failing is better than nothing: Envoy's "panic" mode).
   */
  pick(exclude: ReadonlySet<string> = new Set()): Target | undefined {
    const candidates = this.#targets.filter((target) => !exclude.has(target.id));
    if (candidates.length === 0) return undefined;
    const now = this.#now();
    const healthy = candidates.filter((target) => target.ejectedUntil <= now);
    const pool =
      healthy.length > 0
        ? healthy
        : [...candidates].sort((a, b) => a.ejectedUntil - b.ejectedUntil).slice(0, 1);
    if (this.#options.algorithm === 'least-connections') {
      // Ties go round robin, so equal loads still spread.
      const least = Math.min(...pool.map((target) => target.outstanding));
      const tied = pool.filter((target) => target.outstanding === least);
      return tied[this.#cursor++ % tied.length];
    }
    return pool[this.#cursor++ % pool.length];
  }

  /** Records one attempt on a target: failures eject it after the threshold. */
  recordAttempt(target: Target, isSuccess: boolean): void {
    if (isSuccess) {
      target.consecutiveFailures = 0;
      return;
    }
    target.consecutiveFailures += 1;
    if (target.consecutiveFailures >= this.#options.ejectAfterFailures) {
      target.ejectedUntil = this.#now() + this.#options.ejectCooldownMs;
      target.consecutiveFailures = 0;
    }
  }
}
