import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAccessTokenVerifier } from './verifier';

const issuer = 'bazaar-users';
const audience = 'bazaar-api';
const { publicKey, privateKey } = await generateKeyPair('ES256');
const other = await generateKeyPair('ES256');
const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
const keys = createLocalJWKSet({ keys: [jwk] });

async function sign(
  claims: Record<string, unknown> = {},
  options: {
    key?: Parameters<SignJWT['sign']>[0];
    exp?: number;
    kid?: string;
    iss?: string;
    aud?: string;
  } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ roles: ['customer'], ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'k1' })
    .setSubject('usr_1')
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? audience)
    .setIssuedAt(now)
    .setExpirationTime(options.exp ?? now + 300)
    .sign(options.key ?? privateKey);
}

describe('createAccessTokenVerifier', () => {
  const verify = createAccessTokenVerifier({ keys, issuer, audience });

  it('accepts a valid token and returns the user and roles', async () => {
    const principal = await verify(await sign({ roles: ['customer', 'admin'] }));
    expect(principal.userId).toBe('usr_1');
    expect(principal.roles).toEqual(['customer', 'admin']);
  });

  it.each([
    ['signed by another key', () => sign({}, { key: other.privateKey })],
    ['unknown kid', () => sign({}, { kid: 'nope' })],
    ['wrong issuer', () => sign({}, { iss: 'someone-else' })],
    ['wrong audience', () => sign({}, { aud: 'internal' })],
    ['expired', () => sign({}, { exp: Math.floor(Date.now() / 1000) - 60 })],
    ['garbage', () => Promise.resolve('not.a.token')],
  ])('rejects a token %s with UNAUTHENTICATED', async (_name, make) => {
    await expect(verify(await make())).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('re-checks expiry of a remembered token on every use', async () => {
    let now = Date.now();
    const clocked = createAccessTokenVerifier({ keys, issuer, audience, now: () => now });
    const token = await sign({}, { exp: Math.floor(now / 1000) + 10 });
    await expect(clocked(token)).resolves.toMatchObject({ userId: 'usr_1' });
    now += 60_000;
    await expect(clocked(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses symmetric algorithms at construction', () => {
    expect(() =>
      createAccessTokenVerifier({ keys, issuer, audience, algorithms: ['HS256'] }),
    ).toThrow(/asymmetric/);
  });
});
