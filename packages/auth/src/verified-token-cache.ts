import type { JWTPayload } from 'jose';

export interface VerifiedTokenCacheOptions {
  /** How many tokens to remember (0 turns the cache off); the oldest goes first. */
  readonly size: number;
  readonly clockToleranceSeconds: number;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}

/**
 * Remembers what verifying a token produced. A client sends the same token for its whole life and
 * an ES256 verification costs 100–200 µs of CPU, more than most requests' own work. The signature
 * and the fixed claims of a token cannot change, so they are verified once; `exp`/`nbf` are checked
 * again on every recall. Keys leave a JWKS only after the tokens they signed expire, so a remembered
 * token never outlives its key.
 */
export class VerifiedTokenCache<T> {
  private readonly entries = new Map<string, { value: T; claims: JWTPayload }>();

  constructor(private readonly options: VerifiedTokenCacheOptions) {}

  /** The remembered value for `key` while its token's time claims still hold. */
  recall(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const { exp, nbf } = entry.claims;
    const at = this.options.now() / 1000;
    const skew = this.options.clockToleranceSeconds;
    const isCurrent =
      typeof exp === 'number' && exp + skew > at && (typeof nbf !== 'number' || nbf - skew <= at);
    if (isCurrent) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  remember(key: string, value: T, claims: JWTPayload): void {
    if (this.options.size === 0) return;
    if (this.entries.size >= this.options.size) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, claims });
  }
}
