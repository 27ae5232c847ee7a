import { validateEvent } from '@bazaar/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createTestDatabase,
  PASSWORD,
  registerAndLogin,
  startUsers,
  uniqueEmail,
  type RunningUsers,
  type TestDatabase,
  type TokenPairBody,
} from './users.fixture';

// Registration, the password policy, argon2id hashing and rehash, profiles (no mass assignment),
// the local admin, and the user.registered.v1 outbox row — against real PostgreSQL and Redis.

let database: TestDatabase;
let users: RunningUsers;

beforeAll(async () => {
  database = await createTestDatabase();
  users = await startUsers(database.url);
});

afterAll(async () => {
  await users?.close();
  await database?.drop();
});

interface ProblemBody {
  code: string;
  errors?: { path: string; message: string }[];
  reason?: string;
}

function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

describe('registration', () => {
  it('creates an account with a usr_ id and the normalised email, and answers 201', async () => {
    const local = uniqueEmail('Ada').split('@')[0] ?? '';
    const reply = await call<{ id: string; email: string; name: string }>(
      users.url,
      'POST',
      '/v1/users',
      {
        body: { email: `  ${local.toUpperCase()}@Example.COM `, password: PASSWORD, name: ' Ada ' },
      },
    );
    expect(reply.status).toBe(201);
    expect(reply.headers.get('location')).toBe('/v1/users/me');
    expect(Object.keys(reply.body).sort()).toEqual(['email', 'id', 'name']);
    expect(reply.body.id).toMatch(/^usr_[A-Za-z0-9_-]{1,64}$/);
    expect(reply.body.email).toBe(`${local.toLowerCase()}@example.com`);
    expect(reply.body.name).toBe('Ada');
  });

  it('refuses a duplicate email with 409, whatever its case or spacing', async () => {
    const email = uniqueEmail();
    const first = await call(users.url, 'POST', '/v1/users', {
      body: { email, password: PASSWORD, name: 'First' },
    });
    expect(first.status).toBe(201);
    const again = await call<ProblemBody>(users.url, 'POST', '/v1/users', {
      body: { email: ` ${email.toUpperCase()}`, password: PASSWORD, name: 'Second' },
    });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toContain('application/problem+json');
    expect(again.body.code).toBe('CONFLICT');
  });

  it('lets only one of many concurrent registrations of one email succeed', async () => {
    const email = uniqueEmail('race');
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        call(users.url, 'POST', '/v1/users', {
          body: { email, password: PASSWORD, name: `Racer ${index}` },
        }),
      ),
    );
    expect(replies.map((reply) => reply.status).sort()).toEqual([
      201, 409, 409, 409, 409, 409, 409, 409,
    ]);
  });

  it('explains the password policy and lists every invalid field at once', async () => {
    const reply = await call<ProblemBody>(users.url, 'POST', '/v1/users', {
      body: { email: 'not-an-email', password: 'short', name: '   ' },
    });
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe('VALIDATION_FAILED');
    expect(reply.body.errors).toEqual([
      { path: '/body/email', message: 'must be a valid email address' },
      { path: '/body/password', message: 'must be at least 12 characters (got 5)' },
      { path: '/body/name', message: 'must not be empty' },
    ]);
  });

  it('refuses common passwords and the email as password', async () => {
    const email = uniqueEmail();
    const common = await call<ProblemBody>(users.url, 'POST', '/v1/users', {
      body: { email, password: 'Password1234', name: 'Common' },
    });
    expect(common.status).toBe(400);
    expect(common.body.errors).toEqual([
      { path: '/body/password', message: 'is too common; choose a less predictable password' },
    ]);
    const sameAsEmail = await call<ProblemBody>(users.url, 'POST', '/v1/users', {
      body: { email, password: email, name: 'Lazy' },
    });
    expect(sameAsEmail.body.errors).toEqual([
      { path: '/body/password', message: 'must not be the email address' },
    ]);
  });

  it('stores an argon2id hash with m ≥ 19 MiB and t ≥ 2, never the password', async () => {
    const { id } = await registerAndLogin(users.url);
    const { rows } = await users.pool.query<{ password_hash: string }>(
      'SELECT password_hash FROM users WHERE id = $1',
      [id],
    );
    const hash = rows[0]?.password_hash ?? '';
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(hash).not.toContain(PASSWORD);
  });

  it('writes user.registered.v1 to the outbox in the same transaction as the account', async () => {
    const email = uniqueEmail('event');
    const reply = await call<{ id: string }>(users.url, 'POST', '/v1/users', {
      body: { email, password: PASSWORD, name: 'Grace Hopper' },
    });
    const { rows } = await users.pool.query<{
      type: string;
      event_id: string;
      payload: Record<string, unknown>;
    }>(`SELECT type, event_id, payload FROM outbox WHERE payload->>'subject' = $1`, [
      reply.body.id,
    ]);
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(row?.type).toBe('user.registered.v1');
    expect(row?.payload).toMatchObject({
      specversion: '1.0',
      id: row?.event_id,
      source: '/users',
      type: 'user.registered.v1',
      datacontenttype: 'application/json',
      subject: reply.body.id,
      data: { userId: reply.body.id, email, name: 'Grace Hopper' },
    });
    expect(row?.payload.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    expect(validateEvent(row?.payload)).toMatchObject({ ok: true });
  });

  it('writes no event when the registration fails', async () => {
    const email = uniqueEmail('dup-event');
    await call(users.url, 'POST', '/v1/users', { body: { email, password: PASSWORD, name: 'A' } });
    await call(users.url, 'POST', '/v1/users', { body: { email, password: PASSWORD, name: 'B' } });
    const { rows } = await users.pool.query(
      `SELECT 1 FROM outbox WHERE payload->'data'->>'email' = $1`,
      [email],
    );
    expect(rows).toHaveLength(1);
  });
});

describe('login', () => {
  it('answers a Bearer pair whose access token names the user and their role', async () => {
    const { id, tokens } = await registerAndLogin(users.url);
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokens.expiresIn).toBe(900);
    expect(tokens.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const claims = decodePayload(tokens.accessToken);
    expect(claims).toMatchObject({
      sub: id,
      iss: 'bazaar-users',
      aud: 'bazaar-api',
      roles: ['customer'],
    });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(900);
  });

  it('answers the same 401 for an unknown email and a wrong password', async () => {
    const { email } = await registerAndLogin(users.url);
    const wrongPassword = await call<ProblemBody>(users.url, 'POST', '/v1/auth/login', {
      body: { email, password: 'not the password at all' },
    });
    const unknownEmail = await call<ProblemBody>(users.url, 'POST', '/v1/auth/login', {
      body: { email: uniqueEmail('nobody'), password: PASSWORD },
    });
    expect(wrongPassword.status).toBe(401);
    expect(unknownEmail.status).toBe(401);
    expect({ ...wrongPassword.body, traceId: undefined, instance: undefined }).toEqual({
      ...unknownEmail.body,
      traceId: undefined,
      instance: undefined,
    });
  });

  it('accepts the email in any case and with spaces', async () => {
    const { email } = await registerAndLogin(users.url);
    const reply = await call(users.url, 'POST', '/v1/auth/login', {
      body: { email: ` ${email.toUpperCase()} `, password: PASSWORD },
    });
    expect(reply.status).toBe(200);
  });

  it('rehashes the password on login when the argon2 parameters have changed', async () => {
    const { id, email } = await registerAndLogin(users.url);
    const stronger = await startUsers(database.url, { env: { ARGON2_TIME_COST: '3' } });
    try {
      const login = await call(stronger.url, 'POST', '/v1/auth/login', {
        body: { email, password: PASSWORD },
      });
      expect(login.status).toBe(200);
      const { rows } = await users.pool.query<{ password_hash: string }>(
        'SELECT password_hash FROM users WHERE id = $1',
        [id],
      );
      expect(rows[0]?.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=3,p=1\$/);
    } finally {
      await stronger.close();
    }
    // The rehashed password still opens the account with the original parameters' instance.
    const again = await call(users.url, 'POST', '/v1/auth/login', {
      body: { email, password: PASSWORD },
    });
    expect(again.status).toBe(200);
  });
});

describe('profile', () => {
  it('reads the caller’s own profile', async () => {
    const { id, email, tokens } = await registerAndLogin(users.url);
    const reply = await call(users.url, 'GET', '/v1/users/me', { token: tokens.accessToken });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('cache-control')).toBe('private, no-store');
    expect(reply.body).toEqual({
      id,
      email,
      name: 'Test User',
      role: 'customer',
      emailVerified: false,
      createdAt: expect.any(String) as unknown,
      updatedAt: expect.any(String) as unknown,
    });
  });

  it('requires a token', async () => {
    const reply = await call<ProblemBody>(users.url, 'GET', '/v1/users/me');
    expect(reply.status).toBe(401);
    expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="bazaar"');
  });

  it('changes the name, and the next read shows it', async () => {
    const { tokens } = await registerAndLogin(users.url);
    await call(users.url, 'GET', '/v1/users/me', { token: tokens.accessToken }); // cached now
    const patched = await call(users.url, 'PATCH', '/v1/users/me', {
      token: tokens.accessToken,
      body: { name: '  Ada Lovelace ' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe('Ada Lovelace');
    const read = await call(users.url, 'GET', '/v1/users/me', { token: tokens.accessToken });
    expect(read.body.name).toBe('Ada Lovelace');
  });

  it.each([
    ['role', { role: 'admin' }],
    ['emailVerified', { emailVerified: true }],
    ['email', { email: 'someone-else@example.com' }],
    ['id', { id: 'usr_someoneelse' }],
  ])('refuses to let the user set %s (mass assignment), changing nothing', async (field, body) => {
    const { id, tokens } = await registerAndLogin(users.url);
    const reply = await call<ProblemBody>(users.url, 'PATCH', '/v1/users/me', {
      token: tokens.accessToken,
      body: { name: 'Sneaky', ...body },
    });
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe('VALIDATION_FAILED');
    expect(reply.body.errors).toEqual([{ path: `/body/${field}`, message: 'is not allowed' }]);
    const { rows } = await users.pool.query(
      'SELECT name, role, email_verified FROM users WHERE id = $1',
      [id],
    );
    expect(rows[0]).toEqual({ name: 'Test User', role: 'customer', email_verified: false });
  });

  it('refuses an empty change and an invalid name', async () => {
    const { tokens } = await registerAndLogin(users.url);
    const empty = await call<ProblemBody>(users.url, 'PATCH', '/v1/users/me', {
      token: tokens.accessToken,
      body: {},
    });
    expect(empty.status).toBe(400);
    const blank = await call<ProblemBody>(users.url, 'PATCH', '/v1/users/me', {
      token: tokens.accessToken,
      body: { name: '  ' },
    });
    expect(blank.body.errors).toEqual([{ path: '/body/name', message: 'must not be empty' }]);
  });

  it('authenticates before reading the body: an anonymous PATCH gets 401, not 400', async () => {
    const reply = await call(users.url, 'PATCH', '/v1/users/me', { body: { role: 'admin' } });
    expect(reply.status).toBe(401);
  });
});

describe('local admin', () => {
  it('exists with the admin role when ADMIN_EMAIL and ADMIN_PASSWORD are set, and follows a new password', async () => {
    const email = uniqueEmail('admin');
    const first = await startUsers(database.url, {
      env: { ADMIN_EMAIL: email, ADMIN_PASSWORD: 'first admin password' },
    });
    try {
      const login = await call<TokenPairBody>(first.url, 'POST', '/v1/auth/login', {
        body: { email, password: 'first admin password' },
      });
      expect(login.status).toBe(200);
      expect(decodePayload(login.body.accessToken).roles).toEqual(['admin']);
      const me = await call(first.url, 'GET', '/v1/users/me', { token: login.body.accessToken });
      expect(me.body).toMatchObject({ role: 'admin', emailVerified: true });
    } finally {
      await first.close();
    }
    const second = await startUsers(database.url, {
      env: { ADMIN_EMAIL: email, ADMIN_PASSWORD: 'second admin password' },
    });
    try {
      const old = await call(second.url, 'POST', '/v1/auth/login', {
        body: { email, password: 'first admin password' },
      });
      expect(old.status).toBe(401);
      const current = await call(second.url, 'POST', '/v1/auth/login', {
        body: { email, password: 'second admin password' },
      });
      expect(current.status).toBe(200);
      const { rows } = await second.pool.query(
        'SELECT count(*)::int AS n FROM users WHERE email = $1',
        [email],
      );
      expect(rows[0]).toEqual({ n: 1 });
    } finally {
      await second.close();
    }
  });

  it('promotes an existing customer account named by ADMIN_EMAIL', async () => {
    const { email } = await registerAndLogin(users.url);
    const promoted = await startUsers(database.url, {
      env: { ADMIN_EMAIL: email, ADMIN_PASSWORD: 'the admin password now' },
    });
    try {
      const login = await call<TokenPairBody>(promoted.url, 'POST', '/v1/auth/login', {
        body: { email, password: 'the admin password now' },
      });
      expect(decodePayload(login.body.accessToken).roles).toEqual(['admin']);
    } finally {
      await promoted.close();
    }
  });
});
