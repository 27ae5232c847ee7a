import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/** Every token is signed with ECDSA P-256 + SHA-256: compact, fast, and verified by every JWT library. */
export const SIGNING_ALGORITHM = 'ES256';

/** The public half of a signing key as the JWKS publishes it (RFC 7517). */
export interface PublicJwk extends JWK {
  readonly kty: string;
  readonly kid: string;
  readonly alg: string;
  readonly use: 'sig';
}

/** A freshly generated signing key, before its private half is encrypted for storage. */
export interface GeneratedKey {
  readonly kid: string;
  readonly algorithm: string;
  readonly publicJwk: PublicJwk;
  readonly privateJwk: JWK;
}

/** A key pair for {@link SIGNING_ALGORITHM}; its `kid` is the RFC 7638 thumbprint of the public key. */
export async function generateSigningKey(): Promise<GeneratedKey> {
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    kid,
    algorithm: SIGNING_ALGORITHM,
    publicJwk: {
      ...publicJwk,
      kty: publicJwk.kty ?? 'EC',
      kid,
      alg: SIGNING_ALGORITHM,
      use: 'sig',
    },
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALGORITHM },
  };
}

const CIPHERTEXT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * The AES-256 key that wraps private keys, derived from the configured key-encryption key with
 * HKDF-SHA-256 (RFC 5869), so any long random string serves as configuration.
 */
export function deriveWrappingKey(keyEncryptionKey: string): Buffer {
  return Buffer.from(
    hkdfSync('sha256', keyEncryptionKey, 'bazaar-users', 'signing-key-wrapping/v1', 32),
  );
}

/**
 * Encrypts a private JWK with AES-256-GCM. The `kid` is authenticated data, so a ciphertext copied
 * to another key's row fails to decrypt. Layout: version (1 byte) | IV (12) | tag (16) | ciphertext.
 */
export function encryptPrivateJwk(privateJwk: JWK, kid: string, wrappingKey: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', wrappingKey, iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const ciphertext = Buffer.concat([
    cipher.update(JSON.stringify(privateJwk), 'utf8'),
    cipher.final(),
  ]);
  return Buffer.concat([Buffer.of(CIPHERTEXT_VERSION), iv, cipher.getAuthTag(), ciphertext]);
}

/** The private JWK {@link encryptPrivateJwk} wrapped; throws if the key or `kid` is wrong. */
export function decryptPrivateJwk(sealed: Buffer, kid: string, wrappingKey: Buffer): JWK {
  if (sealed.length <= 1 + IV_BYTES + TAG_BYTES || sealed[0] !== CIPHERTEXT_VERSION) {
    throw new Error(`signing key ${kid}: unknown ciphertext format`);
  }
  const iv = sealed.subarray(1, 1 + IV_BYTES);
  const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', wrappingKey, iv);
  decipher.setAAD(Buffer.from(kid, 'utf8'));
  decipher.setAuthTag(tag);
  const plaintext = Buffer.concat([
    decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)),
    decipher.final(),
  ]);
  return JSON.parse(plaintext.toString('utf8')) as JWK;
}

/**
 * When a key that stops signing at `supersededAt` may leave the JWKS: once the last token it can
 * have signed has expired, allowing for clock differences between issuers and verifiers.
 */
export function retireAfterOf(
  supersededAt: Date,
  longestTokenLifetimeMs: number,
  clockToleranceMs: number,
): Date {
  return new Date(supersededAt.getTime() + longestTokenLifetimeMs + clockToleranceMs);
}
