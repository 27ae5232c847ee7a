import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EtcdRegistry } from '@bazaar/registry';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestRegistry,
  register,
  startGateway,
  startUpstream,
  type GatewayUnderTest,
  type Upstream,
} from './gateway.fixture';

const issuer = 'bazaar-users';
const audience = 'bazaar-api';

interface Jwks {
  url: string;
  keys: JWK[];
  fetches: number;
  close(): Promise<void>;
}

async function startJwks(): Promise<Jwks> {
  const jwks: Jwks = { url: '', keys: [], fetches: 0, close: () => Promise.resolve() };
  const server = http.createServer((_request, response) => {
    jwks.fetches += 1;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ keys: jwks.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwks.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  jwks.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return jwks;
}

async function newKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return {
    kid,
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
  };
}

function sign(
  key: { kid: string; privateKey: CryptoKey },
  claims: { iss?: string; aud?: string; exp?: number | string; sub?: string } = {},
) {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setSubject(claims.sub ?? 'usr_1')
    .setIssuer(claims.iss ?? issuer)
    .setAudience(claims.aud ?? audience)
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? '5m')
    .sign(key.privateKey);
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('gateway JWT verification', () => {
  let registry: EtcdRegistry;
  let gateway: GatewayUnderTest;
  let upstream: Upstream;
  let jwks: Jwks;
  let key: Awaited<ReturnType<typeof newKey>>;

  beforeAll(async () => {
    registry = createTestRegistry();
    upstream = await startUpstream('orders-1');
    await register(registry, 'orders', upstream);
    jwks = await startJwks();
    key = await newKey('k1');
    jwks.keys = [key.jwk];
    gateway = await startGateway(
      `
_format_version: '3.0'
consumers:
  - { username: console, custom_id: usr_console }
services:
  - name: orders
    routes:
      - name: orders
        paths: [/v1/orders]
        strip_path: false
        plugins:
          - name: jwt
            config:
              jwks_uri: '${jwks.url}'
              issuer: ${issuer}
              audiences: [${audience}]
              algorithms: [ES256]
              clock_skew_seconds: 0
              jwks_cooldown_ms: 0
`,
      registry,
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await registry?.close();
    await upstream?.kill();
    await jwks?.close();
  });

  const call = (authorization?: string) =>
    fetch(`${gateway.url}/v1/orders`, {
      headers: authorization === undefined ? {} : { authorization },
    });

  it('passes a valid token upstream with the identity headers', async () => {
    const token = await sign(key, { sub: 'usr_console' });
    const response = await call(`Bearer ${token}`);
    expect(response.status).toBe(200);
    const seen = upstream.received.at(-1);
    expect(seen?.headers['x-authenticated-userid']).toBe('usr_console');
    expect(seen?.headers['x-consumer-username']).toBe('console');
    expect(seen?.headers.authorization).toBe(`Bearer ${token}`);
  });

  it('accepts a token signed by a key published after start (JWKS refreshed on unknown kid)', async () => {
    const rotated = await newKey('k2');
    jwks.keys = [key.jwk, rotated.jwk];
    const fetchesBefore = jwks.fetches;
    expect((await call(`Bearer ${await sign(rotated)}`)).status).toBe(200);
    expect(jwks.fetches).toBeGreaterThan(fetchesBefore);
  });

  it('answers 401 problem+json for every invalid token, never reaching the upstream', async () => {
    const hits = upstream.hits;
    const stranger = await newKey('k1'); // same kid, another key: the signature fails
    const unknownKid = await newKey('k-unknown');
    const valid = await sign(key);
    const [header, payload] = valid.split('.');
    const cases: Record<string, string | undefined> = {
      missing: undefined,
      malformed: 'Bearer not-a-token',
      'wrong scheme': `Basic ${valid}`,
      'alg none': `Bearer ${b64({ alg: 'none', kid: 'k1' })}.${payload}.`,
      'alg HS256': `Bearer ${await new SignJWT({ sub: 'usr_1' })
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('a-shared-secret-that-should-never-work'))}`,
      'wrong issuer': `Bearer ${await sign(key, { iss: 'evil' })}`,
      'wrong audience': `Bearer ${await sign(key, { aud: 'other-api' })}`,
      expired: `Bearer ${await sign(key, { exp: Math.floor(Date.now() / 1000) - 60 })}`,
      'bad signature': `Bearer ${await sign(stranger)}`,
      'unknown kid': `Bearer ${await sign(unknownKid)}`,
      'tampered payload': `Bearer ${header}.${b64({ sub: 'usr_admin', iss: issuer, aud: audience, exp: 9_999_999_999 })}.${valid.split('.')[2]}`,
    };
    const statuses: Record<string, [number, string]> = {};
    for (const [name, authorization] of Object.entries(cases)) {
      const response = await call(authorization);
      statuses[name] = [response.status, ((await response.json()) as { code: string }).code];
    }
    expect(statuses).toEqual(
      Object.fromEntries(Object.keys(cases).map((name) => [name, [401, 'UNAUTHENTICATED']])),
    );
    expect(upstream.hits).toBe(hits);
  });
});

describe('gateway rate limiting (Redis)', () => {
  let registry: EtcdRegistry;
  let gateways: GatewayUnderTest[];
  let upstream: Upstream;
  // Redis keys carry the route name: a fresh one per run keeps runs independent.
  const route = `login-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    registry = createTestRegistry();
    upstream = await startUpstream('users-1');
    await register(registry, 'users', upstream);
    const yaml = `
_format_version: '3.0'
services:
  - name: users
    routes:
      - name: ${route}
        paths: [/v1/auth/login]
        methods: [POST]
        strip_path: false
        plugins:
          - name: rate-limiting
            config: { minute: 5, limit_by: ip }
`;
    gateways = [
      await startGateway(yaml, registry, { redis: true }),
      await startGateway(yaml, registry, { redis: true }),
    ];
  });

  afterAll(async () => {
    await Promise.all((gateways ?? []).map((gateway) => gateway.close()));
    await registry?.close();
    await upstream?.kill();
  });

  it('holds one limit across two gateway instances, with 429, Retry-After and RateLimit-* headers', async () => {
    const statuses: number[] = [];
    const remaining: (string | null)[] = [];
    for (let i = 0; i < 5; i++) {
      const gateway = gateways[i % 2];
      if (gateway === undefined) throw new Error('gateway missing');
      const response = await fetch(`${gateway.url}/v1/auth/login`, { method: 'POST', body: '{}' });
      await response.arrayBuffer();
      statuses.push(response.status);
      remaining.push(response.headers.get('ratelimit-remaining'));
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    for (const gateway of gateways) {
      const refused = await fetch(`${gateway.url}/v1/auth/login`, { method: 'POST', body: '{}' });
      expect(refused.status).toBe(429);
      expect(await refused.json()).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.headers.get('ratelimit-limit')).toBe('5');
      expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    }
    expect(upstream.hits).toBe(5);
  });
});

describe('gateway rate limiting per consumer', () => {
  let registry: EtcdRegistry;
  let gateway: GatewayUnderTest;
  let upstream: Upstream;
  let jwks: Jwks;
  let key: Awaited<ReturnType<typeof newKey>>;
  const route = `orders-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    registry = createTestRegistry();
    upstream = await startUpstream('orders-1');
    await register(registry, 'orders', upstream);
    jwks = await startJwks();
    key = await newKey('k1');
    jwks.keys = [key.jwk];
    gateway = await startGateway(
      `
_format_version: '3.0'
services:
  - name: orders
    routes:
      - name: ${route}
        paths: [/v1/orders]
        strip_path: false
        plugins:
          - name: jwt
            config:
              jwks_uri: '${jwks.url}'
              issuer: ${issuer}
              audiences: [${audience}]
          - name: rate-limiting
            config: { minute: 2, limit_by: consumer }
`,
      registry,
      { redis: true },
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await registry?.close();
    await upstream?.kill();
    await jwks?.close();
  });

  it('counts each token subject separately, from the same address', async () => {
    const alice = `Bearer ${await sign(key, { sub: 'usr_alice' })}`;
    const bob = `Bearer ${await sign(key, { sub: 'usr_bob' })}`;
    const statusOf = async (authorization: string) => {
      const response = await fetch(`${gateway.url}/v1/orders`, { headers: { authorization } });
      await response.arrayBuffer();
      return response.status;
    };
    const statuses = [
      await statusOf(alice),
      await statusOf(alice),
      await statusOf(alice),
      await statusOf(bob),
      await statusOf(bob),
      await statusOf(bob),
    ];
    expect(statuses).toEqual([200, 200, 429, 200, 200, 429]);
  });
});
