import { generateKeyPair, SignJWT, type JWTHeaderParameters } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAccessTokens } from './access-tokens';

async function fixture(verifiedCacheSize?: number) {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  let clock = Date.parse('2025-06-01T12:00:00Z');
  const keyLookups: string[] = [];
  const tokens = createAccessTokens({
    keyRing: {
      sign: (payload, typ) =>
        new SignJWT(payload)
          .setProtectedHeader({ alg: 'ES256', kid: 'k1', ...(typ === undefined ? {} : { typ }) })
          .sign(privateKey),
      verificationKey: (header: JWTHeaderParameters) => {
        keyLookups.push(String(header.kid));
        return Promise.resolve(publicKey);
      },
    },
    issuer: 'bazaar-users',
    userAudience: 'bazaar-api',
    userTokenTtlMs: 900_000,
    serviceTokenTtlMs: 300_000,
    clockToleranceMs: 5_000,
    now: () => new Date(clock),
    ...(verifiedCacheSize === undefined ? {} : { verifiedCacheSize }),
  });
  return { tokens, keyLookups, advance: (ms: number) => (clock += ms) };
}

describe('access tokens', () => {
  it('round-trip a user and a service, each only for its own audience', async () => {
    const { tokens } = await fixture();
    const user = await tokens.issueForUser({ id: 'usr_ABC', role: 'admin' });
    expect(user.expiresInSeconds).toBe(900);
    await expect(tokens.verifyUser(user.token)).resolves.toEqual({
      userId: 'usr_ABC',
      roles: ['admin'],
    });
    await expect(tokens.verifyService(user.token, 'users')).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    const service = await tokens.issueForService('orders', 'users');
    await expect(tokens.verifyService(service.token, 'users')).resolves.toEqual({
      clientId: 'orders',
    });
    await expect(tokens.verifyService(service.token, 'payments')).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    await expect(tokens.verifyUser(service.token)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });

  it('verify a signature once, but check expiry on every use', async () => {
    const { tokens, keyLookups, advance } = await fixture();
    const { token } = await tokens.issueForUser({ id: 'usr_ABC', role: 'customer' });
    await tokens.verifyUser(token);
    await tokens.verifyUser(token);
    await tokens.verifyUser(token);
    expect(keyLookups).toEqual(['k1']);
    advance(900_000 + 4_000); // inside the clock tolerance
    await expect(tokens.verifyUser(token)).resolves.toBeDefined();
    advance(2_000);
    await expect(tokens.verifyUser(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('never remember a token that failed, nor one altered by a byte', async () => {
    const { tokens, keyLookups } = await fixture();
    const { token } = await tokens.issueForUser({ id: 'usr_ABC', role: 'customer' });
    await tokens.verifyUser(token);
    const altered = `${token.slice(0, -2)}${token.at(-2) === 'A' ? 'B' : 'A'}${token.at(-1)}`;
    await expect(tokens.verifyUser(altered)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(tokens.verifyUser(altered)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(keyLookups).toHaveLength(3);
  });

  it('verify every time when the cache is off', async () => {
    const { tokens, keyLookups } = await fixture(0);
    const { token } = await tokens.issueForUser({ id: 'usr_ABC', role: 'customer' });
    await tokens.verifyUser(token);
    await tokens.verifyUser(token);
    expect(keyLookups).toHaveLength(2);
  });
});
