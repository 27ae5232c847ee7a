import { createLogger } from '@bazaar/logging';
import { metrics } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProfileCache } from '../src/accounts/profile-cache';
import type { Profile } from '../src/accounts/user';
import type { UserRepository } from '../src/accounts/user.repository';
import {
  call,
  createTestDatabase,
  registerAndLogin,
  startUsers,
  testKeyPrefix,
  type RunningUsers,
  type TestDatabase,
} from './users.fixture';

// Cache-aside for profile reads in the real Redis: hits skip PostgreSQL, writes invalidate, and a
// burst of reads after an invalidation costs at most one database query — in one instance and
// across instances. Database queries are counted at the repository, the only code that reads them.

let database: TestDatabase;
let first: RunningUsers;
let second: RunningUsers;
/** Ids passed to `findById`, in both instances: each one is one query to PostgreSQL. */
const loads: string[] = [];

const counting = (repository: UserRepository): UserRepository => ({
  ...repository,
  findById: (id) => {
    loads.push(id);
    return repository.findById(id);
  },
});

const loadsOf = (id: string) => loads.filter((loaded) => loaded === id).length;

beforeAll(async () => {
  database = await createTestDatabase();
  const env = { REDIS_KEY_PREFIX: testKeyPrefix() };
  first = await startUsers(database.url, { env, wrapRepository: counting });
  second = await startUsers(database.url, { env, wrapRepository: counting });
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  await database?.drop();
});

const me = (url: string, token: string) =>
  call<{ name?: string; id?: string }>(url, 'GET', '/v1/users/me', { token });

describe('profile cache', () => {
  it('serves the second read from Redis without querying PostgreSQL', async () => {
    const { id, tokens } = await registerAndLogin(first.url);
    expect((await me(first.url, tokens.accessToken)).status).toBe(200);
    expect(loadsOf(id)).toBe(1);
    expect(await first.redis.exists(`${first.config.REDIS_KEY_PREFIX}profile:v1:${id}`)).toBe(1);

    for (let read = 0; read < 5; read += 1) {
      expect((await me(first.url, tokens.accessToken)).body.id).toBe(id);
      expect((await me(second.url, tokens.accessToken)).body.id).toBe(id);
    }
    expect(loadsOf(id)).toBe(1);

    const ttl = await first.redis.pttl(`${first.config.REDIS_KEY_PREFIX}profile:v1:${id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5 * 60_000 * 1.1);
  });

  it('is invalidated by a write: the next read, on any instance, shows the change', async () => {
    const { id, tokens } = await registerAndLogin(first.url);
    await me(first.url, tokens.accessToken);
    await me(second.url, tokens.accessToken);
    const patched = await call(first.url, 'PATCH', '/v1/users/me', {
      token: tokens.accessToken,
      body: { name: 'Renamed' },
    });
    expect(patched.status).toBe(200);
    expect(await first.redis.exists(`${first.config.REDIS_KEY_PREFIX}profile:v1:${id}`)).toBe(0);
    expect((await me(second.url, tokens.accessToken)).body.name).toBe('Renamed');
    expect((await me(first.url, tokens.accessToken)).body.name).toBe('Renamed');
    expect(loadsOf(id)).toBe(2);
  });

  it('answers 500 concurrent reads after an invalidation with at most one database query', async () => {
    const { id, tokens } = await registerAndLogin(first.url);
    await me(first.url, tokens.accessToken);
    await call(first.url, 'PATCH', '/v1/users/me', {
      token: tokens.accessToken,
      body: { name: 'Stampede' },
    });
    const before = loadsOf(id);

    const replies = await Promise.all(
      Array.from({ length: 500 }, () => me(first.url, tokens.accessToken)),
    );
    expect(replies.every((reply) => reply.status === 200 && reply.body.name === 'Stampede')).toBe(
      true,
    );
    expect(loadsOf(id) - before).toBeLessThanOrEqual(1);
    expect(loadsOf(id) - before).toBe(1);
  });

  it('keeps that bound across instances: 500 reads split over two instances, one query', async () => {
    const { id, tokens } = await registerAndLogin(first.url);
    await me(first.url, tokens.accessToken);
    await call(second.url, 'PATCH', '/v1/users/me', {
      token: tokens.accessToken,
      body: { name: 'Two instances' },
    });
    const before = loadsOf(id);

    const replies = await Promise.all(
      Array.from({ length: 500 }, (_, index) =>
        me(index % 2 === 0 ? first.url : second.url, tokens.accessToken),
      ),
    );
    expect(replies.every((reply) => reply.body.name === 'Two instances')).toBe(true);
    expect(loadsOf(id) - before).toBe(1);
  });

  it('never puts back a profile read before a concurrent write (stale refill)', async () => {
    const logger = createLogger({ service: 'users', level: 'silent' });
    const cache = createProfileCache({
      redis: first.redis,
      keyPrefix: testKeyPrefix(),
      ttlMs: 60_000,
      lockMs: 1_000,
      logger,
      meter: metrics.getMeter('test'),
    });
    const profile = (version: number, name: string): Profile => ({
      id: 'usr_STALE',
      email: 'stale@example.com',
      name,
      role: 'customer',
      emailVerified: false,
      version,
      createdAt: new Date(0).toISOString(),
      updatedAt: new Date(0).toISOString(),
    });
    let release: () => void = () => undefined;
    let loaderEntered: () => void = () => undefined;
    const isLoading = new Promise<void>((resolve) => {
      loaderEntered = resolve;
    });
    const slowRead = cache.read(
      'usr_STALE',
      () =>
        new Promise<Profile>((resolve) => {
          // This read saw version 1; before it returns, a write makes version 2 and invalidates.
          release = () => resolve(profile(1, 'Old'));
          loaderEntered();
        }),
    );
    await isLoading;
    await cache.invalidate('usr_STALE', 2);
    release();
    expect((await slowRead)?.name).toBe('Old');

    let reloaded = 0;
    const next = await cache.read('usr_STALE', () => {
      reloaded += 1;
      return Promise.resolve(profile(2, 'New'));
    });
    expect(next?.name).toBe('New');
    expect(reloaded).toBe(1);
    const cached = await cache.read('usr_STALE', () => Promise.resolve(profile(2, 'Wrong')));
    expect(cached?.name).toBe('New');
  });

  it('reports hits and misses on /metrics', async () => {
    const { tokens } = await registerAndLogin(first.url);
    await me(first.url, tokens.accessToken);
    await me(first.url, tokens.accessToken);
    const response = await fetch(`${first.url}/metrics`);
    const text = await response.text();
    expect(text).toMatch(/users_profile_cache_lookups_total\{[^}]*result="hit"[^}]*\} [1-9]/);
    expect(text).toMatch(/users_profile_cache_lookups_total\{[^}]*result="miss"[^}]*\} [1-9]/);
  });
});
