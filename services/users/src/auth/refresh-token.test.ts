import { describe, expect, it } from 'vitest';
import {
  hashRefreshToken,
  isWellFormedRefreshToken,
  newRefreshToken,
  refreshDecision,
} from './refresh-token';

const now = new Date('2025-06-01T12:00:00Z');
const later = new Date('2025-06-02T12:00:00Z');
const earlier = new Date('2025-05-31T12:00:00Z');

describe('refresh tokens', () => {
  it('are 256 random bits in base64url, and well-formed', () => {
    const token = newRefreshToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(isWellFormedRefreshToken(token)).toBe(true);
    expect(newRefreshToken()).not.toBe(token);
  });

  it('refuses anything else before a lookup', () => {
    expect(isWellFormedRefreshToken('')).toBe(false);
    expect(isWellFormedRefreshToken(`${newRefreshToken()}x`)).toBe(false);
    expect(isWellFormedRefreshToken("' OR 1=1 --                                ")).toBe(false);
  });

  it('are stored as a SHA-256 digest', () => {
    const token = newRefreshToken();
    expect(hashRefreshToken(token)).toHaveLength(32);
    expect(hashRefreshToken(token).equals(hashRefreshToken(token))).toBe(true);
    expect(hashRefreshToken(token).toString('base64url')).not.toBe(token);
  });
});

describe('refreshDecision', () => {
  const fresh = { expiresAt: later, usedAt: null, familyRevokedAt: null };

  it.each([
    ['an unknown token', undefined, 'unknown'],
    ['a fresh token', fresh, 'rotate'],
    ['a used token (reuse)', { ...fresh, usedAt: earlier }, 'reused'],
    ['an expired token', { ...fresh, expiresAt: earlier }, 'expired'],
    ['a token expiring this instant', { ...fresh, expiresAt: now }, 'expired'],
    ['a token of a revoked family', { ...fresh, familyRevokedAt: earlier }, 'revoked'],
    [
      'a used token of a revoked family',
      { ...fresh, usedAt: earlier, familyRevokedAt: earlier },
      'revoked',
    ],
    [
      'a used, expired token (reuse wins)',
      { ...fresh, usedAt: earlier, expiresAt: earlier },
      'reused',
    ],
  ] as const)('%s → %s', (_label, state, decision) => {
    expect(refreshDecision(state, now)).toBe(decision);
  });
});
