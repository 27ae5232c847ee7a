import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@bazaar/logging';
import type { Meter } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import type { Profile } from './user';

/**
 * Cache-aside for profiles in Redis. Redis is an optimisation only: any Redis failure (down,
 * stalled past the command deadline) turns a read into a plain PostgreSQL read.
 */
export interface ProfileCache {
  /** The cached profile, or `load(id)`'s, which is then cached. */
  read(
    id: string,
    load: (id: string) => Promise<Profile | undefined>,
  ): Promise<Profile | undefined>;
  /** Drops the cached profile after a change that produced `version`. */
  invalidate(id: string, version: number): Promise<void>;
}

export interface ProfileCacheOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly ttlMs: number;
  /** How long a refill may hold the lock; waiting instances give up and read PostgreSQL after it. */
  readonly lockMs: number;
  readonly logger: Logger;
  readonly meter: Meter;
  /** How often an instance waiting for another's refill looks again. */
  readonly pollIntervalMs?: number;
}

// Stores the profile unless an invalidation has announced a newer version (KEYS[2]): a refill that
// read PostgreSQL just before a change must not put the old profile back after the change.
const SET_IF_FRESH = `
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) < floor then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`;

// Raises the version floor (never lowers it) and drops the cached profile.
const INVALIDATE = `
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) > floor then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
`;

// Releases the refill lock only if this refill still holds it.
const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type Attempt<T> = { readonly ok: true; readonly value: T } | { readonly ok: false };

/**
 * A {@link ProfileCache} with stampede protection: concurrent reads of one profile in an instance
 * share one lookup (single flight), and after a miss only the instance that takes a short Redis
 * lock (`SET NX PX`) reads PostgreSQL; the others poll the cache until it is filled or the lock
 * is gone. So a burst of reads after an invalidation costs one database query, not one per reader.
 */
export function createProfileCache(options: ProfileCacheOptions): ProfileCache {
  const { redis, keyPrefix, ttlMs, lockMs, logger, pollIntervalMs = 20 } = options;
  const lookups = options.meter.createCounter('users.profile_cache.lookups', {
    description:
      'Profile lookups by outcome: hit; miss (not cached); bypass (PostgreSQL read without the cache, Redis unusable)',
  });
  const inflight = new Map<string, Promise<Profile | undefined>>();
  // Invalidations Redis did not take; retried when it is back. Until then this instance does not
  // trust the cached copy of those profiles.
  const pendingInvalidations = new Map<string, number>();
  const floorTtlMs = Math.max(ttlMs, 60_000);

  const profileKey = (id: string) => `${keyPrefix}profile:v1:${id}`;
  const floorKey = (id: string) => `${keyPrefix}profile-floor:${id}`;
  const lockKey = (id: string) => `${keyPrefix}profile-lock:${id}`;

  async function attempt<T>(call: () => Promise<T>): Promise<Attempt<T>> {
    try {
      return { ok: true, value: await call() };
    } catch (error) {
      logger.debug({ err: error }, 'profile cache: redis call failed');
      return { ok: false };
    }
  }

  const parse = (cached: string) => JSON.parse(cached) as Profile;
  // ±10 % so profiles cached together do not all expire together.
  const jitteredTtl = () => Math.round(ttlMs * (0.9 + Math.random() * 0.2));

  // Whether Redis can be used at all; a failure while it is "ready" may be a congested event loop
  // (the reply arrived, but after the command deadline) rather than a Redis outage.
  const isRedisUsable = () => redis.status === 'ready';

  async function fill(
    id: string,
    token: string,
    load: (id: string) => Promise<Profile | undefined>,
  ): Promise<Profile | undefined> {
    try {
      // Double-checked: another refill may have finished between our miss and our lock.
      const cached = await attempt(() => redis.get(profileKey(id)));
      if (cached.ok && cached.value !== null) return parse(cached.value);
      const profile = await load(id);
      if (profile !== undefined) {
        await attempt(() =>
          redis.eval(
            SET_IF_FRESH,
            2,
            profileKey(id),
            floorKey(id),
            JSON.stringify(profile),
            profile.version,
            jitteredTtl(),
          ),
        );
      }
      return profile;
    } finally {
      await attempt(() => redis.eval(RELEASE_LOCK, 1, lockKey(id), token));
    }
  }

  /**
   * After a miss: take the refill lock and load, or wait for the instance that holds it. When a
   * holder finishes without filling (it failed, or the user does not exist), the waiters compete
   * for the lock again, so PostgreSQL still sees one query at a time. Only an unusable Redis, or
   * waiting longer than a few lock periods, sends a reader to PostgreSQL on its own.
   */
  async function refill(
    id: string,
    load: (id: string) => Promise<Profile | undefined>,
    failuresSoFar: number,
  ): Promise<Profile | undefined> {
    const token = randomUUID();
    const deadline = Date.now() + lockMs * 3;
    let failures = failuresSoFar;
    // Two failed calls in a row: Redis is stalled, not merely slow to be read; stop paying deadlines.
    const isGivingUp = () => !isRedisUsable() || failures >= 2 || Date.now() >= deadline;
    while (!isGivingUp()) {
      const lock = await attempt(() => redis.set(lockKey(id), token, 'PX', lockMs, 'NX'));
      if (!lock.ok) {
        failures += 1;
        continue;
      }
      if (lock.value === 'OK') return fill(id, token, load);
      // Another instance is refilling: wait for its result rather than querying too.
      while (!isGivingUp()) {
        await sleep(pollIntervalMs);
        const state = await attempt(() => redis.mget(profileKey(id), lockKey(id)));
        if (!state.ok) {
          failures += 1;
          continue;
        }
        const [cached, holder] = state.value;
        if (cached != null) return parse(cached);
        if (holder == null) break;
      }
    }
    lookups.add(1, { result: 'bypass' });
    return load(id);
  }

  async function lookup(
    id: string,
    load: (id: string) => Promise<Profile | undefined>,
  ): Promise<Profile | undefined> {
    if (pendingInvalidations.has(id) || !isRedisUsable()) {
      lookups.add(1, { result: 'bypass' });
      return load(id);
    }
    const cached = await attempt(() => redis.get(profileKey(id)));
    if (cached.ok && cached.value !== null) {
      lookups.add(1, { result: 'hit' });
      return parse(cached.value);
    }
    lookups.add(1, { result: 'miss' });
    return refill(id, load, cached.ok ? 0 : 1);
  }

  async function sendInvalidation(id: string, version: number): Promise<boolean> {
    const sent = await attempt(() =>
      redis.eval(INVALIDATE, 2, profileKey(id), floorKey(id), version, floorTtlMs),
    );
    return sent.ok;
  }

  let retryTimer: NodeJS.Timeout | undefined;

  /** Sends the invalidations Redis missed; keeps retrying every second until all are through. */
  function retryPendingInvalidations(): void {
    clearTimeout(retryTimer);
    retryTimer = undefined;
    for (const [id, version] of pendingInvalidations) {
      void sendInvalidation(id, version).then((isSent) => {
        if (isSent && pendingInvalidations.get(id) === version) pendingInvalidations.delete(id);
        scheduleRetry();
      });
    }
  }

  function scheduleRetry(): void {
    if (pendingInvalidations.size === 0 || retryTimer !== undefined) return;
    retryTimer = setTimeout(retryPendingInvalidations, 1_000);
    retryTimer.unref();
  }

  redis.on('ready', retryPendingInvalidations);

  return {
    read(id, load) {
      const running = inflight.get(id);
      if (running !== undefined) return running;
      const flight = lookup(id, load).finally(() => inflight.delete(id));
      inflight.set(id, flight);
      return flight;
    },

    async invalidate(id, version) {
      // A lookup already under way may have read the old profile; later reads must not join it.
      inflight.delete(id);
      if (await sendInvalidation(id, version)) {
        pendingInvalidations.delete(id);
        return;
      }
      pendingInvalidations.set(id, Math.max(version, pendingInvalidations.get(id) ?? 0));
      scheduleRetry();
      logger.warn({ userId: id }, 'profile cache: invalidation deferred until redis is back');
    },
  };
}
