import { execFile } from 'node:child_process';
import { createHmac, createPublicKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import jwt from 'jsonwebtoken';
import jwksRsa from 'jwks-rsa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createTestDatabase,
  registerAndLogin,
  startUsers,
  uniqueEmail,
  type RunningUsers,
  type TestDatabase,
  type TokenPairBody,
} from './users.fixture';

// Access tokens: their claims, the JWT negative matrix, verification by an independent library
// against the JWKS, signing keys persisted encrypted, and rotation with an overlap window.

const ADMIN_EMAIL = uniqueEmail('admin');
const ADMIN_PASSWORD = 'the local admin password';

let database: TestDatabase;
let users: RunningUsers;
let clock = Date.now();
const now = () => new Date(clock);

beforeAll(async () => {
  database = await createTestDatabase();
  users = await startUsers(database.url, {
    now,
    env: { ADMIN_EMAIL, ADMIN_PASSWORD },
  });
});

afterAll(async () => {
  await users?.close();
  await database?.drop();
});

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function partsOf(token: string): {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
} {
  const [header = '', payload = ''] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >,
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >,
  };
}

async function jwks(url = users.url): Promise<{ keys: JWK[] }> {
  return (await call<{ keys: JWK[] }>(url, 'GET', '/.well-known/jwks.json')).body;
}

async function me(token: string, url = users.url) {
  return call<{ code?: string; id?: string }>(url, 'GET', '/v1/users/me', { token });
}

async function adminLogin(url = users.url): Promise<TokenPairBody> {
  const reply = await call<TokenPairBody>(url, 'POST', '/v1/auth/login', {
    body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
  });
  expect(reply.status).toBe(200);
  return reply.body;
}

describe('access tokens', () => {
  it('are ES256 with a kid and typ at+jwt, and carry iss, aud, sub, iat, nbf, exp, jti and roles', async () => {
    const { id, tokens } = await registerAndLogin(users.url);
    const { header, payload } = partsOf(tokens.accessToken);
    expect(header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: users.service.keyRing.activeKid() });
    const issuedAt = Math.floor(clock / 1000);
    expect(payload).toEqual({
      iss: 'bazaar-users',
      aud: 'bazaar-api',
      sub: id,
      iat: issuedAt,
      nbf: issuedAt,
      exp: issuedAt + 900,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      roles: ['customer'],
    });
  });

  it('are verified by an independent JWT library (jsonwebtoken + jwks-rsa) against the JWKS', async () => {
    const { id, tokens } = await registerAndLogin(users.url);
    const client = jwksRsa({ jwksUri: `${users.url}/.well-known/jwks.json`, cache: false });
    const { header } = partsOf(tokens.accessToken);
    const signingKey = await client.getSigningKey(String(header.kid));
    const verified = jwt.verify(tokens.accessToken, signingKey.getPublicKey(), {
      algorithms: ['ES256'],
      issuer: 'bazaar-users',
      audience: 'bazaar-api',
      clockTimestamp: Math.floor(clock / 1000),
    });
    expect(verified).toMatchObject({ sub: id, roles: ['customer'] });
    // The library really checks the signature: a tampered payload fails in it too.
    const [h, , s] = tokens.accessToken.split('.');
    const forged = `${h}.${base64url({ ...partsOf(tokens.accessToken).payload, roles: ['admin'] })}.${s}`;
    expect(() =>
      jwt.verify(forged, signingKey.getPublicKey(), {
        algorithms: ['ES256'],
        clockTimestamp: Math.floor(clock / 1000),
      }),
    ).toThrow(/invalid signature/);
  });
});

describe('the JWT negative matrix: every one is 401 on GET /v1/users/me', () => {
  let valid: string;
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  let signature: string;

  beforeAll(async () => {
    valid = (await registerAndLogin(users.url)).tokens.accessToken;
    ({ header, payload } = partsOf(valid));
    signature = valid.split('.')[2] ?? '';
  });

  const signWithRealKey = (claims: Record<string, unknown>, typ: string | null = 'at+jwt') =>
    users.service.keyRing.sign(claims, typ ?? undefined);

  const cases: [string, () => Promise<string> | string][] = [
    [
      'alg none, no signature',
      () => `${base64url({ ...header, alg: 'none' })}.${base64url(payload)}.`,
    ],
    [
      'alg none, original signature kept',
      () => `${base64url({ ...header, alg: 'none' })}.${base64url(payload)}.${signature}`,
    ],
    [
      'HS256 signed with the public key (PEM), the classic key-confusion attack',
      async () => {
        const jwk = (await jwks()).keys.find((key) => key.kid === header.kid);
        const pem = createPublicKey({ key: jwk as JWK & { kty: string }, format: 'jwk' })
          .export({ type: 'spki', format: 'pem' })
          .toString();
        const input = `${base64url({ ...header, alg: 'HS256' })}.${base64url(payload)}`;
        return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
      },
    ],
    [
      'HS256 signed with the public key (JWK JSON)',
      async () => {
        const jwk = (await jwks()).keys.find((key) => key.kid === header.kid);
        const input = `${base64url({ ...header, alg: 'HS256' })}.${base64url(payload)}`;
        return `${input}.${createHmac('sha256', JSON.stringify(jwk)).update(input).digest('base64url')}`;
      },
    ],
    [
      'a kid that is not in the JWKS (signed by a key of the attacker)',
      async () => {
        const { privateKey } = await generateKeyPair('ES256');
        return new SignJWT(payload)
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'attacker-key' })
          .sign(privateKey);
      },
    ],
    [
      'the real kid, signed by a key of the attacker',
      async () => {
        const { privateKey } = await generateKeyPair('ES256');
        return new SignJWT(payload)
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: String(header.kid) })
          .sign(privateKey);
      },
    ],
    [
      'the attacker’s public key embedded in the header (jwk)',
      async () => {
        const { privateKey, publicKey } = await generateKeyPair('ES256');
        return new SignJWT(payload)
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', jwk: await exportJWK(publicKey) })
          .sign(privateKey);
      },
    ],
    [
      'no kid',
      async () => {
        const { privateKey } = await generateKeyPair('ES256');
        return new SignJWT(payload)
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
          .sign(privateKey);
      },
    ],
    ['wrong iss', () => signWithRealKey({ ...payload, iss: 'https://evil.example' })],
    ['wrong aud', () => signWithRealKey({ ...payload, aud: 'some-other-api' })],
    ['a service audience (users)', () => signWithRealKey({ ...payload, aud: 'users' })],
    [
      'expired (beyond the clock tolerance)',
      () =>
        signWithRealKey({
          ...payload,
          iat: Math.floor(clock / 1000) - 1000,
          nbf: Math.floor(clock / 1000) - 1000,
          exp: Math.floor(clock / 1000) - 60,
        }),
    ],
    [
      'not yet valid (nbf beyond the clock tolerance)',
      () => signWithRealKey({ ...payload, nbf: Math.floor(clock / 1000) + 60 }),
    ],
    ['no exp', () => signWithRealKey({ ...payload, exp: undefined })],
    ['no typ header', () => signWithRealKey(payload, null)],
    ['another typ header (JWT)', () => signWithRealKey(payload, 'JWT')],
    [
      'a service token (client_id) for the public audience',
      () => signWithRealKey({ ...payload, client_id: 'orders', sub: 'orders' }),
    ],
    ['an unknown role', () => signWithRealKey({ ...payload, roles: ['superuser'] })],
    ['a sub that is not a user id', () => signWithRealKey({ ...payload, sub: 'orders' })],
    [
      'tampered payload (roles → admin), original signature',
      () => `${base64url(header)}.${base64url({ ...payload, roles: ['admin'] })}.${signature}`,
    ],
    [
      'tampered payload (exp extended), original signature',
      () =>
        `${base64url(header)}.${base64url({ ...payload, exp: Number(payload.exp) + 86_400 })}.${signature}`,
    ],
    ['truncated signature', () => valid.slice(0, -10)],
    ['signature removed', () => valid.split('.').slice(0, 2).join('.')],
    ['header and payload only, trailing dot', () => `${valid.split('.').slice(0, 2).join('.')}.`],
    ['truncated to the header', () => valid.split('.')[0] ?? ''],
    ['garbage', () => 'not.a.jwt'],
  ];

  it.each(cases)('%s → 401', async (_label, makeToken) => {
    const token = await makeToken();
    const reply = await me(token);
    expect(reply.status).toBe(401);
    expect(reply.body.code).toBe('UNAUTHENTICATED');
    expect(reply.headers.get('www-authenticate')).toBe(
      'Bearer realm="bazaar", error="invalid_token"',
    );
  });

  it('while the untouched token is accepted (the matrix fails for the right reason)', async () => {
    expect((await me(valid)).status).toBe(200);
    expect((await me(await signWithRealKey(payload))).status).toBe(200);
  });

  it('accepts a token expired by less than the clock tolerance, and refuses it past the tolerance', async () => {
    const at = Math.floor(clock / 1000);
    const barely = await signWithRealKey({ ...payload, exp: at - 2 });
    expect((await me(barely)).status).toBe(200);
    const past = await signWithRealKey({ ...payload, exp: at - 6 });
    expect((await me(past)).status).toBe(401);
  });

  it('refuses a refresh token or a non-Bearer scheme as credentials', async () => {
    const { tokens } = await registerAndLogin(users.url);
    expect((await me(tokens.refreshToken)).status).toBe(401);
    const basic = await call(users.url, 'GET', '/v1/users/me', {
      headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    });
    expect(basic.status).toBe(401);
  });
});

describe('signing keys', () => {
  it('are persisted: a restarted instance signs with the same key and publishes the same JWKS', async () => {
    const before = await jwks();
    const restarted = await startUsers(database.url, { now });
    try {
      expect(restarted.service.keyRing.activeKid()).toBe(users.service.keyRing.activeKid());
      expect(await jwks(restarted.url)).toEqual(before);
    } finally {
      await restarted.close();
    }
  });

  it('are stored with the private half encrypted, and cannot be used with another key-encryption key', async () => {
    const { rows } = await users.pool.query<{ private_jwk_ciphertext: Buffer; public_jwk: JWK }>(
      'SELECT public_jwk, private_jwk_ciphertext FROM signing_keys WHERE superseded_at IS NULL',
    );
    const [row] = rows;
    expect(row?.public_jwk).not.toHaveProperty('d');
    const stored = row?.private_jwk_ciphertext.toString('latin1') ?? '';
    expect(stored).not.toContain('"d"');
    expect(stored).not.toContain('"kty"');
    await expect(
      startUsers(database.url, {
        now,
        env: { USERS_KEY_ENCRYPTION_KEY: 'another key-encryption key, not the one used' },
      }),
    ).rejects.toThrow(/unable to authenticate data/i);
  });
});

describe('key rotation', () => {
  it('is for admins only', async () => {
    const { tokens } = await registerAndLogin(users.url);
    const reply = await call<{ code: string }>(
      users.url,
      'POST',
      '/v1/admin/signing-keys/rotations',
      {
        token: tokens.accessToken,
      },
    );
    expect(reply.status).toBe(403);
    expect(reply.body.code).toBe('FORBIDDEN');
    expect((await call(users.url, 'POST', '/v1/admin/signing-keys/rotations')).status).toBe(401);
  });

  it('keeps the old key in the JWKS until its tokens have expired, then drops it', async () => {
    const other = await startUsers(database.url, { now });
    try {
      const oldKid = users.service.keyRing.activeKid();
      const { tokens: old } = await registerAndLogin(users.url);
      const admin = await adminLogin();

      const rotation = await call<{
        kid: string;
        previousKid: string;
        previousRetireAfter: string;
      }>(users.url, 'POST', '/v1/admin/signing-keys/rotations', { token: admin.accessToken });
      expect(rotation.status).toBe(201);
      expect(rotation.body.previousKid).toBe(oldKid);
      expect(rotation.body.kid).not.toBe(oldKid);
      // Access-token lifetime (15 min) + one key reload interval (30 s) + clock tolerance (5 s).
      expect(Date.parse(rotation.body.previousRetireAfter) - clock).toBe(935_000);

      // Both keys are published; new tokens use the new key; old tokens still work.
      expect((await jwks()).keys.map((key) => key.kid).sort()).toEqual(
        [oldKid, rotation.body.kid].sort(),
      );
      const fresh = (await registerAndLogin(users.url)).tokens.accessToken;
      expect(partsOf(fresh).header.kid).toBe(rotation.body.kid);
      expect((await me(old.accessToken)).status).toBe(200);
      expect((await me(fresh)).status).toBe(200);

      // Another instance that has not reloaded yet learns the new key from its first token.
      expect((await me(fresh, other.url)).status).toBe(200);
      expect((await jwks(other.url)).keys).toHaveLength(2);

      // Once the overlap has passed, only the new key is published and old tokens are refused.
      clock = Date.parse(rotation.body.previousRetireAfter) + 1_000;
      expect((await jwks()).keys.map((key) => key.kid)).toEqual([rotation.body.kid]);
      expect((await me(old.accessToken)).status).toBe(401);
      const later = (await registerAndLogin(users.url)).tokens.accessToken;
      expect((await me(later)).status).toBe(200);

      // The superseded key never signs again: its private half is gone from the database.
      const { rows } = await users.pool.query(
        'SELECT private_jwk_ciphertext IS NULL AS erased FROM signing_keys WHERE kid = $1',
        [oldKid],
      );
      expect(rows[0]).toEqual({ erased: true });
    } finally {
      await other.close();
    }
  });

  it('also works from the command line (npm run rotate-keys)', async () => {
    const before = users.service.keyRing.activeKid();
    const serviceDir = fileURLToPath(new URL('..', import.meta.url));
    await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/rotate-keys.ts'], {
      cwd: serviceDir,
      env: {
        LOG_LEVEL: 'silent',
        DATABASE_URL: users.config.DATABASE_URL,
        REDIS_URL: users.config.REDIS_URL,
        RABBITMQ_URL: users.config.RABBITMQ_URL,
      },
    });
    const restarted = await startUsers(database.url, { now });
    try {
      expect(restarted.service.keyRing.activeKid()).not.toBe(before);
      expect((await jwks(restarted.url)).keys.map((key) => key.kid)).toContain(before);
    } finally {
      await restarted.close();
    }
  });
});
