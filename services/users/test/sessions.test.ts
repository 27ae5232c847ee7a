import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createTestDatabase,
  registerAndLogin,
  startUsers,
  type RunningUsers,
  type TestDatabase,
  type TokenPairBody,
} from './users.fixture';

// Refresh tokens: rotation on every use, reuse detection that revokes the whole family, logout,
// expiry — against real PostgreSQL.

let database: TestDatabase;
let users: RunningUsers;
let clock = Date.now();

beforeAll(async () => {
  database = await createTestDatabase();
  users = await startUsers(database.url, { now: () => new Date(clock) });
});

afterAll(async () => {
  await users?.close();
  await database?.drop();
});

interface ProblemBody {
  code: string;
  reason?: string;
}

const refresh = (refreshToken: string) =>
  call<TokenPairBody & ProblemBody>(users.url, 'POST', '/v1/auth/refresh', {
    body: { refreshToken },
  });

const logout = (refreshToken: string) =>
  call(users.url, 'POST', '/v1/auth/logout', { body: { refreshToken } });

describe('refresh', () => {
  it('answers a new pair, and the presented refresh token stops working', async () => {
    const { id, tokens } = await registerAndLogin(users.url);
    const first = await refresh(tokens.refreshToken);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.body.tokenType).toBe('Bearer');
    expect(first.body.refreshToken).not.toBe(tokens.refreshToken);
    expect(first.body.accessToken).not.toBe(tokens.accessToken);
    const me = await call(users.url, 'GET', '/v1/users/me', { token: first.body.accessToken });
    expect(me.body.id).toBe(id);

    const second = await refresh(first.body.refreshToken);
    expect(second.status).toBe(200);
  });

  it('stores only a hash of each refresh token', async () => {
    const { tokens } = await registerAndLogin(users.url);
    const { rows } = await users.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM refresh_tokens
       WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'
          OR encode(token_hash, 'base64') LIKE '%' || $1 || '%'`,
      [tokens.refreshToken.slice(0, 20)],
    );
    expect(rows[0]?.n).toBe(0);
    const { rows: all } = await users.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM refresh_tokens
       WHERE token_hash = sha256(convert_to($1, 'UTF8'))`,
      [tokens.refreshToken],
    );
    expect(all[0]?.n).toBe(1);
  });

  it('detects reuse: an already rotated token revokes the whole family, newest token included', async () => {
    const { tokens } = await registerAndLogin(users.url);
    const rotated = await refresh(tokens.refreshToken);
    expect(rotated.status).toBe(200);

    const replay = await refresh(tokens.refreshToken);
    expect(replay.status).toBe(401);
    expect(replay.body).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'refresh_token_reused' });

    // The legitimate holder's newest token is dead too: the family is revoked.
    const newest = await refresh(rotated.body.refreshToken);
    expect(newest.status).toBe(401);
    expect(newest.body.reason).toBe('refresh_token_revoked');

    const { rows } = await users.pool.query(
      `SELECT f.revoked_reason FROM refresh_token_families f
       JOIN refresh_tokens t ON t.family_id = f.id
       WHERE t.token_hash = sha256(convert_to($1, 'UTF8'))`,
      [tokens.refreshToken],
    );
    expect(rows).toEqual([{ revoked_reason: 'reuse' }]);
  });

  it('revokes only the family of the reused token, not the user’s other logins', async () => {
    const { email, tokens: phone } = await registerAndLogin(users.url);
    const laptop = await call<TokenPairBody>(users.url, 'POST', '/v1/auth/login', {
      body: { email, password: 'correct horse battery staple' },
    });
    await refresh(phone.refreshToken);
    expect((await refresh(phone.refreshToken)).status).toBe(401);
    expect((await refresh(laptop.body.refreshToken)).status).toBe(200);
  });

  it('lets exactly one of many concurrent presentations of one token succeed', async () => {
    const { tokens } = await registerAndLogin(users.url);
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => refresh(tokens.refreshToken)),
    );
    const statuses = replies.map((reply) => reply.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 401)).toHaveLength(9);
    // The others counted as reuse, so even the winner's new token is revoked.
    const winner = replies.find((reply) => reply.status === 200);
    expect((await refresh(winner?.body.refreshToken ?? '')).status).toBe(401);
  });

  it('refuses unknown, malformed and expired tokens with 401', async () => {
    expect((await refresh('A'.repeat(43))).body).toMatchObject({
      code: 'UNAUTHENTICATED',
      reason: 'refresh_token_unknown',
    });
    expect((await refresh('not a token')).status).toBe(401);
    expect((await refresh('')).status).toBe(400);

    const { tokens } = await registerAndLogin(users.url);
    const saved = clock;
    try {
      clock += 30 * 24 * 3_600_000 + 1_000;
      const expired = await refresh(tokens.refreshToken);
      expect(expired.status).toBe(401);
      expect(expired.body.reason).toBe('refresh_token_expired');
    } finally {
      clock = saved;
    }
  });
});

describe('logout', () => {
  it('revokes the refresh family: neither the presented token nor its predecessors work', async () => {
    const { tokens } = await registerAndLogin(users.url);
    const rotated = await refresh(tokens.refreshToken);
    const reply = await logout(rotated.body.refreshToken);
    expect(reply.status).toBe(204);
    const after = await refresh(rotated.body.refreshToken);
    expect(after.status).toBe(401);
    expect(after.body.reason).toBe('refresh_token_revoked');
  });

  it('answers 204 for an unknown token, revealing nothing', async () => {
    expect((await logout('B'.repeat(43))).status).toBe(204);
    expect((await logout('garbage')).status).toBe(204);
  });

  it('leaves the user’s other sessions alone', async () => {
    const { email, tokens: first } = await registerAndLogin(users.url);
    const second = await call<TokenPairBody>(users.url, 'POST', '/v1/auth/login', {
      body: { email, password: 'correct horse battery staple' },
    });
    await logout(first.refreshToken);
    expect((await refresh(second.body.refreshToken)).status).toBe(200);
  });
});
