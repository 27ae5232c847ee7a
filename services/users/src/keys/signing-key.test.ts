import { compactVerify, importJWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  decryptPrivateJwk,
  deriveWrappingKey,
  encryptPrivateJwk,
  generateSigningKey,
  retireAfterOf,
} from './signing-key';

describe('signing keys', () => {
  it('are ES256 pairs whose kid is the RFC 7638 thumbprint, published without the private part', async () => {
    const key = await generateSigningKey();
    expect(key.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(key.publicJwk.kid).toBe(key.kid);
    expect(key.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(key.publicJwk).not.toHaveProperty('d');
    expect(key.privateJwk).toHaveProperty('d');
    const token = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(await importJWK(key.privateJwk, 'ES256'));
    await expect(
      compactVerify(token, await importJWK(key.publicJwk, 'ES256')),
    ).resolves.toBeDefined();
  });

  it('are sealed with AES-256-GCM: the ciphertext hides the private key and round-trips', async () => {
    const key = await generateSigningKey();
    const wrappingKey = deriveWrappingKey('a key-encryption key of a good length');
    const sealed = encryptPrivateJwk(key.privateJwk, key.kid, wrappingKey);
    expect(sealed.toString('latin1')).not.toContain(String(key.privateJwk.d));
    expect(decryptPrivateJwk(sealed, key.kid, wrappingKey)).toEqual(key.privateJwk);
  });

  it('cannot be unsealed with another key-encryption key, another kid or a flipped bit', async () => {
    const key = await generateSigningKey();
    const wrappingKey = deriveWrappingKey('a key-encryption key of a good length');
    const sealed = encryptPrivateJwk(key.privateJwk, key.kid, wrappingKey);
    expect(() =>
      decryptPrivateJwk(sealed, key.kid, deriveWrappingKey('another key-encryption key')),
    ).toThrow();
    expect(() => decryptPrivateJwk(sealed, 'another-kid', wrappingKey)).toThrow();
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] = (flipped.at(-1) ?? 0) ^ 1;
    expect(() => decryptPrivateJwk(flipped, key.kid, wrappingKey)).toThrow();
    expect(() => decryptPrivateJwk(Buffer.of(9, 1, 2), key.kid, wrappingKey)).toThrow(
      /unknown ciphertext format/,
    );
  });

  it('retire once the last token they signed has expired, plus the clock tolerance', () => {
    expect(retireAfterOf(new Date('2025-01-01T00:00:00Z'), 15 * 60_000, 5_000)).toEqual(
      new Date('2025-01-01T00:15:05Z'),
    );
  });
});
