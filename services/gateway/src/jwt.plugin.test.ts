import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAppError } from '@bazaar/errors';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier } from './jwt.plugin';

describe('token verifier cache', () => {
  let server: http.Server;
  let jwksUri = '';
  let fetches = 0;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = http.createServer((_request, response) => {
      fetches += 1;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const sign = (expiresAt: number) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('usr_1')
      .setIssuer('iss')
      .setAudience('aud')
      .setExpirationTime(expiresAt)
      .sign(privateKey);

  it('remembers a verified token but still refuses it once it has expired', async () => {
    let nowMs = Date.now();
    const verify = createTokenVerifier(
      {
        jwks_uri: jwksUri,
        issuer: 'iss',
        audiences: ['aud'],
        algorithms: ['ES256'],
        anonymous: false,
        clock_skew_seconds: 5,
        jwks_cooldown_ms: 30_000,
        jwks_cache_max_age_ms: 600_000,
      },
      [],
      { now: () => nowMs },
    );
    const exp = Math.floor(nowMs / 1000) + 60;
    const token = await sign(exp);
    const first = await verify(`Bearer ${token}`);
    expect(first?.subject).toBe('usr_1');
    const again = await verify(`Bearer ${token}`);
    expect(again).toBe(first);
    expect(fetches).toBe(1);

    // A tampered copy is not the remembered token: verified (and refused) on its own.
    const [header, , signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ sub: 'usr_2', exp, iss: 'iss', aud: 'aud' }));
    await expect(
      verify(`Bearer ${header}.${forged.toString('base64url')}.${signature}`),
    ).rejects.toSatisfy((error) => isAppError(error, 'UNAUTHENTICATED'));

    nowMs = (exp + 6) * 1000;
    await expect(verify(`Bearer ${token}`)).rejects.toSatisfy((error) =>
      isAppError(error, 'UNAUTHENTICATED'),
    );
  });
});
