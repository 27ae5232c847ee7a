import { createHash, randomBytes } from 'node:crypto';
import type { RefreshRefusal } from '../errors';

// 256 random bits, base64url without padding: 43 characters.
const REFRESH_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A new opaque refresh token. Only its hash is stored. */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether `token` can be one of ours at all (checked before any database lookup). */
export function isWellFormedRefreshToken(token: string): boolean {
  return REFRESH_TOKEN_PATTERN.test(token);
}

/**
 * What is stored of a refresh token. A fast hash is enough: the token is 256 random bits, so there is
 * nothing to guess; the hash only keeps a database leak from handing out live tokens.
 */
export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** What the database knows about a presented refresh token and its family. */
export interface RefreshTokenState {
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
  readonly familyRevokedAt: Date | null;
}

/**
 * Whether a presented refresh token may be rotated, or why not. A token that was already rotated
 * is `reused`: either its owner's client retried, or someone else holds a copy. The two cannot be
 * told apart, so the whole family is revoked (RFC 9700 §4.14.2, refresh token rotation).
 */
export function refreshDecision(
  state: RefreshTokenState | undefined,
  now: Date,
): 'rotate' | RefreshRefusal {
  if (state === undefined) return 'unknown';
  if (state.familyRevokedAt !== null) return 'revoked';
  if (state.usedAt !== null) return 'reused';
  if (state.expiresAt.getTime() <= now.getTime()) return 'expired';
  return 'rotate';
}
