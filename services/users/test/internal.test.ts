import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createTestDatabase,
  registerAndLogin,
  startUsers,
  type RunningUsers,
  type TestDatabase,
} from './users.fixture';

// Service-to-service credentials: client-credentials tokens with one audience per called service.
// Internal routes accept only service tokens for `users`: user tokens, other audiences and expired
// tokens are refused.

const clients = [
  {
    id: 'orders',
    secret: 'orders-client-secret-for-tests-0123456789',
    audiences: ['users', 'payments'],
  },
  {
    id: 'notifications',
    secret: 'notifications-client-secret-for-tests-0123',
    audiences: ['users'],
  },
  { id: 'analytics', secret: 'analytics-client-secret-for-tests-01234567', audiences: ['orders'] },
];

let database: TestDatabase;
let users: RunningUsers;
let clock = Date.now();

beforeAll(async () => {
  database = await createTestDatabase();
  users = await startUsers(database.url, {
    now: () => new Date(clock),
    env: { SERVICE_CLIENTS: JSON.stringify(clients) },
  });
});

afterAll(async () => {
  await users?.close();
  await database?.drop();
});

interface ServiceTokenBody {
  accessToken: string;
  tokenType: string;
  expiresIn: number;
  code?: string;
  reason?: string;
}

function serviceToken(clientId: string, clientSecret: string, audience: string) {
  return call<ServiceTokenBody>(users.url, 'POST', '/internal/v1/tokens', {
    body: { clientId, clientSecret, audience },
  });
}

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

describe('service tokens', () => {
  it('are issued for an allowed audience, naming the client', async () => {
    const reply = await serviceToken('orders', clients[0]?.secret ?? '', 'users');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 300 });
    expect(payloadOf(reply.body.accessToken)).toMatchObject({
      iss: 'bazaar-users',
      aud: 'users',
      sub: 'orders',
      client_id: 'orders',
    });
    expect(payloadOf(reply.body.accessToken)).not.toHaveProperty('roles');
  });

  it('are refused for a wrong secret or an unknown client (401) and an audience not granted (403)', async () => {
    const wrongSecret = await serviceToken('orders', 'not-the-secret', 'users');
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.reason).toBe('invalid_client');
    const unknown = await serviceToken('stranger', clients[0]?.secret ?? '', 'users');
    expect(unknown.status).toBe(401);
    expect(unknown.body.reason).toBe('invalid_client');
    // Another client's secret does not open this client.
    expect((await serviceToken('orders', clients[1]?.secret ?? '', 'users')).status).toBe(401);
    const notGranted = await serviceToken('notifications', clients[1]?.secret ?? '', 'payments');
    expect(notGranted.status).toBe(403);
    expect(notGranted.body.reason).toBe('audience_not_allowed');
  });
});

describe('GET /internal/v1/users/{id}', () => {
  let userId: string;
  let userAccessToken: string;

  beforeAll(async () => {
    const registered = await registerAndLogin(users.url);
    userId = registered.id;
    userAccessToken = registered.tokens.accessToken;
  });

  const getUser = (token?: string, id = userId) =>
    call<{ id?: string; email?: string; code?: string }>(
      users.url,
      'GET',
      `/internal/v1/users/${id}`,
      {
        ...(token === undefined ? {} : { token }),
      },
    );

  it('answers a service token for the users audience', async () => {
    for (const client of [clients[0], clients[1]]) {
      const token = (await serviceToken(client?.id ?? '', client?.secret ?? '', 'users')).body;
      const reply = await getUser(token.accessToken);
      expect(reply.status).toBe(200);
      expect(reply.body).toMatchObject({ id: userId, role: 'customer' });
    }
  });

  it('answers 404 for an unknown user', async () => {
    const token = (await serviceToken('orders', clients[0]?.secret ?? '', 'users')).body;
    expect((await getUser(token.accessToken, 'usr_DOESNOTEXIST')).status).toBe(404);
  });

  it('refuses a user token (401), even an admin’s', async () => {
    const reply = await getUser(userAccessToken);
    expect(reply.status).toBe(401);
    expect(reply.body.code).toBe('UNAUTHENTICATED');
    const forged = await users.service.keyRing.sign(
      { ...payloadOf(userAccessToken), roles: ['admin'] },
      'at+jwt',
    );
    expect((await getUser(forged)).status).toBe(401);
  });

  it('refuses a service token for another audience (401)', async () => {
    const forPayments = (await serviceToken('orders', clients[0]?.secret ?? '', 'payments')).body;
    expect(payloadOf(forPayments.accessToken).aud).toBe('payments');
    expect((await getUser(forPayments.accessToken)).status).toBe(401);
    const forOrders = (await serviceToken('analytics', clients[2]?.secret ?? '', 'orders')).body;
    expect((await getUser(forOrders.accessToken)).status).toBe(401);
  });

  it('refuses an expired service token (401)', async () => {
    const token = (await serviceToken('orders', clients[0]?.secret ?? '', 'users')).body;
    expect((await getUser(token.accessToken)).status).toBe(200);
    const saved = clock;
    try {
      clock += 300_000 + 6_000;
      expect((await getUser(token.accessToken)).status).toBe(401);
    } finally {
      clock = saved;
    }
  });

  it('refuses a user token re-signed for the users audience (no client_id), and no token (401)', async () => {
    const confused = await users.service.keyRing.sign(
      { ...payloadOf(userAccessToken), aud: 'users' },
      'at+jwt',
    );
    expect((await getUser(confused)).status).toBe(401);
    const reply = await getUser();
    expect(reply.status).toBe(401);
    expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="bazaar"');
  });

  it('authenticates before validating the path: an anonymous malformed id is 401, not 400', async () => {
    expect((await getUser(undefined, 'not-a-user-id')).status).toBe(401);
  });

  it('is not reachable with a service token on the public /v1/users/me', async () => {
    const token = (await serviceToken('orders', clients[0]?.secret ?? '', 'users')).body;
    expect(
      (await call(users.url, 'GET', '/v1/users/me', { token: token.accessToken })).status,
    ).toBe(401);
  });
});
