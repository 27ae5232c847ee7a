import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createTestDatabase,
  PASSWORD,
  registerAndLogin,
  startUsers,
  testKeyPrefix,
  type RunningUsers,
  type TestDatabase,
} from './users.fixture';

// Brute-force protection per account and client address, kept in Redis so it holds across
// instances: after 5 failures within 15 minutes, 429 with Retry-After.

let database: TestDatabase;
let first: RunningUsers;
let second: RunningUsers;

beforeAll(async () => {
  database = await createTestDatabase();
  // Two instances sharing one Redis, behind a "gateway" on loopback whose X-Forwarded-For counts.
  const env = { TRUSTED_PROXIES: '127.0.0.1', REDIS_KEY_PREFIX: testKeyPrefix() };
  first = await startUsers(database.url, { env });
  second = await startUsers(database.url, { env });
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  await database?.drop();
});

interface ProblemBody {
  code: string;
  reason?: string;
}

function login(url: string, email: string, password: string, clientAddress = '198.51.100.1') {
  return call<ProblemBody>(url, 'POST', '/v1/auth/login', {
    body: { email, password },
    headers: { 'x-forwarded-for': clientAddress },
  });
}

async function failTimes(url: string, email: string, times: number, clientAddress?: string) {
  const statuses: number[] = [];
  for (let attempt = 0; attempt < times; attempt += 1) {
    statuses.push((await login(url, email, 'a wrong password!', clientAddress)).status);
  }
  return statuses;
}

describe('login throttle', () => {
  it('answers 429 with Retry-After after 5 failures, even for the right password', async () => {
    const { email } = await registerAndLogin(first.url);
    expect(await failTimes(first.url, email, 5)).toEqual([401, 401, 401, 401, 401]);

    const blocked = await login(first.url, email, 'a wrong password!');
    expect(blocked.status).toBe(429);
    expect(blocked.body).toMatchObject({ code: 'RATE_LIMITED', reason: 'login_throttled' });
    const retryAfter = Number(blocked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(890);
    expect(retryAfter).toBeLessThanOrEqual(900);

    expect((await login(first.url, email, PASSWORD)).status).toBe(429);
  });

  it('holds across instances: the second instance refuses the same account and address', async () => {
    const { email } = await registerAndLogin(first.url);
    await failTimes(first.url, email, 5);
    expect((await login(second.url, email, PASSWORD)).status).toBe(429);
  });

  it('is per account and address: another address, or another account, is not blocked', async () => {
    const { email } = await registerAndLogin(first.url);
    const { email: neighbour } = await registerAndLogin(first.url);
    await failTimes(first.url, email, 5);
    expect((await login(first.url, email, PASSWORD, '203.0.113.77')).status).toBe(200);
    expect((await login(first.url, neighbour, PASSWORD)).status).toBe(200);
  });

  it('does not believe X-Forwarded-For from an untrusted peer', async () => {
    const untrusted = await startUsers(database.url, { env: { TRUSTED_PROXIES: '10.9.9.9' } });
    try {
      const { email } = await registerAndLogin(untrusted.url);
      // Spoofing a new address on every attempt does not escape the limit.
      for (let attempt = 0; attempt < 5; attempt += 1) {
        await login(untrusted.url, email, 'a wrong password!', `192.0.2.${attempt}`);
      }
      expect((await login(untrusted.url, email, PASSWORD, '192.0.2.200')).status).toBe(429);
    } finally {
      await untrusted.close();
    }
  });

  it('is cleared by a successful login', async () => {
    const { email } = await registerAndLogin(first.url);
    expect(await failTimes(first.url, email, 4)).toEqual([401, 401, 401, 401]);
    expect((await login(first.url, email, PASSWORD)).status).toBe(200);
    expect(await failTimes(first.url, email, 5)).toEqual([401, 401, 401, 401, 401]);
    expect((await login(first.url, email, PASSWORD)).status).toBe(429);
  });

  it('bounds parallel guessing: of 20 concurrent wrong attempts, only 5 reach the password check', async () => {
    const { email } = await registerAndLogin(first.url);
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        login(index % 2 === 0 ? first.url : second.url, email, 'a wrong password!'),
      ),
    );
    const statuses = replies.map((reply) => reply.status).sort();
    expect(statuses.filter((status) => status === 401)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(15);
  });

  it('lets attempts through again once the window has passed', async () => {
    // A window long enough for five password checks on a loaded machine to fall inside it (the
    // window starts at the first failure).
    const short = await startUsers(database.url, { env: { LOGIN_FAILURE_WINDOW_MS: '10s' } });
    try {
      const { email } = await registerAndLogin(short.url);
      expect(await failTimes(short.url, email, 5)).toEqual([401, 401, 401, 401, 401]);
      const blocked = await login(short.url, email, PASSWORD);
      expect(blocked.status).toBe(429);
      // Retry-After is what is left of the window, rounded up to whole seconds.
      const retryAfter = Number(blocked.headers.get('retry-after'));
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(10);
      await sleep(retryAfter * 1_000 + 100);
      expect((await login(short.url, email, PASSWORD)).status).toBe(200);
    } finally {
      await short.close();
    }
  });
});
