import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, startPrivateServers, type PrivateServers } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserRepository } from '../src/accounts/user.repository';
import {
  call,
  createTestDatabase,
  PASSWORD,
  registerAndLogin,
  startUsers,
  type RunningUsers,
  type TestDatabase,
  type TokenPairBody,
} from './users.fixture';

// Redis is a cache: killing or stalling it mid-traffic must cost latency only — every request keeps
// succeeding and /readyz stays green. PostgreSQL is the source of truth: /readyz follows it.
// Both run as private servers of this test, so stopping them disturbs no one else.

let servers: PrivateServers;
let database: TestDatabase;
let users: RunningUsers;
const loads: string[] = [];

const counting = (repository: UserRepository): UserRepository => ({
  ...repository,
  findById: (id) => {
    loads.push(id);
    return repository.findById(id);
  },
});

beforeAll(async () => {
  servers = await startPrivateServers(['postgres', 'redis']);
  const adminUrl = servers.urls.postgres;
  database = await createTestDatabase(adminUrl, (name) => adminUrl.replace(/\/[^/]*$/, `/${name}`));
  users = await startUsers(database.url, {
    redisUrl: servers.urls.redis,
    wrapRepository: counting,
  });
});

afterAll(async () => {
  await users?.close();
  await database?.drop().catch(() => undefined);
  await servers?.close();
});

const me = (token: string) => call<{ name?: string }>(users.url, 'GET', '/v1/users/me', { token });

interface Traffic {
  stop(): Promise<{ total: number; failures: string[] }>;
}

/**
 * Keeps every kind of request flowing — profile reads and writes, logins, refreshes — until
 * stopped, and records each one that did not succeed.
 */
function startTraffic(accounts: { email: string; tokens: TokenPairBody }[]): Traffic {
  let isRunning = true;
  let total = 0;
  const failures: string[] = [];
  const record = (what: string, status: number, expected: number) => {
    total += 1;
    if (status !== expected) failures.push(`${what}: ${status}`);
  };
  const loops = accounts.map(async (account, index) => {
    let { refreshToken } = account.tokens;
    let round = 0;
    while (isRunning) {
      round += 1;
      record('GET /v1/users/me', (await me(account.tokens.accessToken)).status, 200);
      if (round % 5 === 0) {
        const patch = await call(users.url, 'PATCH', '/v1/users/me', {
          token: account.tokens.accessToken,
          body: { name: `Name ${index}-${round}` },
        });
        record('PATCH /v1/users/me', patch.status, 200);
      }
      if (round % 7 === 0) {
        const rotated = await call<TokenPairBody>(users.url, 'POST', '/v1/auth/refresh', {
          body: { refreshToken },
        });
        record('POST /v1/auth/refresh', rotated.status, 200);
        if (rotated.status === 200) refreshToken = rotated.body.refreshToken;
      }
      if (round % 11 === 0) {
        const login = await call(users.url, 'POST', '/v1/auth/login', {
          body: { email: account.email, password: PASSWORD },
        });
        record('POST /v1/auth/login', login.status, 200);
      }
    }
  });
  return {
    async stop() {
      isRunning = false;
      await Promise.all(loops);
      return { total, failures };
    },
  };
}

describe('Redis outage', () => {
  it('keeps every request succeeding, and /readyz green, while Redis is killed mid-traffic', async () => {
    const accounts = await Promise.all(
      Array.from({ length: 4 }, () => registerAndLogin(users.url)),
    );
    const traffic = startTraffic(accounts);
    await sleep(500);

    // Killed: the supervisor of the private servers restarts it (with a backoff).
    const killedPid = servers.pid('redis');
    process.kill(killedPid, 'SIGKILL');
    await sleep(1_000);
    expect((await call(users.url, 'GET', '/readyz')).status).toBe(200);

    // Kept down for a while.
    await eventually(() => (servers.pid('redis') !== killedPid ? true : undefined), {
      what: 'redis restarted',
    });
    await servers.stop('redis');
    await sleep(1_500);
    const readyWhileDown = await call<{ checks: Record<string, string> }>(
      users.url,
      'GET',
      '/readyz',
    );
    expect(readyWhileDown.status).toBe(200);
    expect(readyWhileDown.body.checks).toEqual({ postgres: 'ok' });

    await servers.start('redis');
    await sleep(1_000);
    const { total, failures } = await traffic.stop();
    expect(failures).toEqual([]);
    expect(total).toBeGreaterThan(50);
  });

  it('serves from the cache again once Redis is back', async () => {
    const { id, tokens } = await registerAndLogin(users.url);
    await eventually(
      async () => {
        const before = loads.filter((loaded) => loaded === id).length;
        await me(tokens.accessToken);
        await me(tokens.accessToken);
        return loads.filter((loaded) => loaded === id).length === before ? true : undefined;
      },
      { what: 'profile reads served from redis' },
    );
  });

  it('keeps every request succeeding while Redis is stalled (paused), and never serves a stale profile after', async () => {
    const accounts = await Promise.all(
      Array.from({ length: 3 }, () => registerAndLogin(users.url)),
    );
    const [watched] = accounts;
    if (watched === undefined) throw new Error('no account');
    await me(watched.tokens.accessToken); // cached
    const traffic = startTraffic(accounts.slice(1));
    await sleep(300);

    servers.signal('redis', 'SIGSTOP');
    try {
      await sleep(500);
      // A write while Redis cannot take the invalidation…
      const patched = await call(users.url, 'PATCH', '/v1/users/me', {
        token: watched.tokens.accessToken,
        body: { name: 'Written while Redis was paused' },
      });
      expect(patched.status).toBe(200);
      // …is visible at once (this instance no longer trusts its cached copy)…
      expect((await me(watched.tokens.accessToken)).body.name).toBe(
        'Written while Redis was paused',
      );
      expect((await call(users.url, 'GET', '/readyz')).status).toBe(200);
      await sleep(500);
    } finally {
      servers.signal('redis', 'SIGCONT');
    }
    await sleep(1_500);
    const { total, failures } = await traffic.stop();
    expect(failures).toEqual([]);
    expect(total).toBeGreaterThan(10);
    // …and after Redis resumes, with the old profile still in it, the deferred invalidation lands.
    await eventually(
      async () => {
        const key = `${users.config.REDIS_KEY_PREFIX}profile:v1:${watched.id}`;
        const cached = await users.redis.get(key);
        return cached === null || cached.includes('Written while Redis was paused')
          ? true
          : undefined;
      },
      { what: 'the stale cached profile dropped' },
    );
    expect((await me(watched.tokens.accessToken)).body.name).toBe('Written while Redis was paused');
  });
});

describe('readiness', () => {
  it('follows PostgreSQL: 503 while it is stopped, 200 when it is back', async () => {
    await servers.stop('postgres');
    try {
      const down = await call<{ code: string; checks: Record<string, string> }>(
        users.url,
        'GET',
        '/readyz',
      );
      expect(down.status).toBe(503);
      expect(down.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(down.body.checks.postgres).not.toBe('ok');
    } finally {
      await servers.start('postgres');
    }
    await eventually(
      async () => ((await call(users.url, 'GET', '/readyz')).status === 200 ? true : undefined),
      { what: 'ready again' },
    );
  });
});
