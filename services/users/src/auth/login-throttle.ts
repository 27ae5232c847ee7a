import { createHash } from 'node:crypto';
import type { Logger } from '@bazaar/logging';
import type { Redis } from 'ioredis';

/**
 * Brute-force protection for one account from one client address: each attempt is counted before
 * the password is checked (so parallel guesses cannot slip past the limit), a success clears the
 * count, and once `maxFailures` attempts failed within `windowMs` of the first, further attempts are
 * refused until the window ends — even with the right password.
 */
export interface LoginThrottle {
  /** Counts an attempt; returns the seconds to wait when it is over the limit, else undefined. */
  admit(email: string, clientAddress: string): Promise<number | undefined>;
  /** Clears the count after a successful login. */
  reset(email: string, clientAddress: string): Promise<void>;
}

export interface LoginThrottleOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly logger: Logger;
  /** Entries of the in-memory fallback used while Redis is unreachable. */
  readonly fallbackCapacity?: number;
}

// INCR and start the window on the first attempt, atomically; returns [count, ms left].
const ADMIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

interface FallbackEntry {
  count: number;
  readonly expiresAt: number;
}

/**
 * A {@link LoginThrottle} kept in Redis, so the limit holds across instances. While Redis is
 * unreachable it counts in this instance's memory instead: protection degrades to per instance,
 * but never disappears and never blocks logins by itself.
 */
export function createLoginThrottle(options: LoginThrottleOptions): LoginThrottle {
  const { redis, maxFailures, windowMs, logger, fallbackCapacity = 10_000 } = options;
  const fallback = new Map<string, FallbackEntry>();

  // The email is hashed so Redis never holds addresses in clear.
  const keyOf = (email: string, clientAddress: string) =>
    `${options.keyPrefix}login-attempts:${createHash('sha256')
      .update(`${email}\n${clientAddress}`)
      .digest('base64url')}`;

  function admitInMemory(key: string): [number, number] {
    const now = Date.now();
    let entry = fallback.get(key);
    if (entry === undefined || entry.expiresAt <= now) {
      fallback.delete(key);
      if (fallback.size >= fallbackCapacity) {
        const oldest = fallback.keys().next();
        if (oldest.done !== true) fallback.delete(oldest.value);
      }
      entry = { count: 0, expiresAt: now + windowMs };
      fallback.set(key, entry);
    }
    entry.count += 1;
    return [entry.count, entry.expiresAt - now];
  }

  return {
    async admit(email, clientAddress) {
      const key = keyOf(email, clientAddress);
      let count: number;
      let msLeft: number;
      try {
        [count, msLeft] = (await redis.eval(ADMIT_SCRIPT, 1, key, windowMs)) as [number, number];
      } catch (error) {
        logger.warn({ err: error }, 'login throttle: redis unavailable; counting in memory');
        [count, msLeft] = admitInMemory(key);
      }
      // Attempts 1..maxFailures are checked; the next one means maxFailures have failed.
      return count > maxFailures ? Math.max(1, Math.ceil(msLeft / 1000)) : undefined;
    },

    async reset(email, clientAddress) {
      const key = keyOf(email, clientAddress);
      fallback.delete(key);
      try {
        await redis.del(key);
      } catch (error) {
        logger.warn({ err: error }, 'login throttle: could not clear the count in redis');
      }
    },
  };
}
