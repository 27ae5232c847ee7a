import { VerifiedTokenCache } from '@bazaar/auth';
import { randomUUID } from 'node:crypto';
import { jwtVerify, type JWTPayload } from 'jose';
import { roles, USER_ID_PATTERN, type Role } from '../accounts/user';
import { invalidAccessToken } from '../errors';
import type { KeyRing } from '../keys/key-ring';
import { SIGNING_ALGORITHM } from '../keys/signing-key';

/** The `typ` header of access tokens (RFC 9068 §2.1); tokens without it are refused. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

/** The audience of service tokens for this service's internal routes. */
export const INTERNAL_AUDIENCE = 'users';

/** Who a verified user token speaks for. */
export interface UserPrincipal {
  readonly userId: string;
  readonly roles: readonly Role[];
}

/** Who a verified service token speaks for. */
export interface ServicePrincipal {
  readonly clientId: string;
}

export interface IssuedToken {
  readonly token: string;
  readonly expiresInSeconds: number;
}

export interface AccessTokens {
  issueForUser(user: { id: string; role: Role }): Promise<IssuedToken>;
  issueForService(clientId: string, audience: string): Promise<IssuedToken>;
  /** The user a public-API access token speaks for; UNAUTHENTICATED for anything else. */
  verifyUser(token: string): Promise<UserPrincipal>;
  /** The service a token for `audience` speaks for; UNAUTHENTICATED for user tokens and others. */
  verifyService(token: string, audience: string): Promise<ServicePrincipal>;
}

export interface AccessTokenOptions {
  readonly keyRing: Pick<KeyRing, 'sign' | 'verificationKey'>;
  readonly issuer: string;
  /** The audience of user tokens (the public API). */
  readonly userAudience: string;
  readonly userTokenTtlMs: number;
  readonly serviceTokenTtlMs: number;
  readonly clockToleranceMs: number;
  readonly now?: () => Date;
  /** How many verified tokens to remember (0: verify every time). Default 10 000. */
  readonly verifiedCacheSize?: number;
}

const isRole = (value: unknown): value is Role =>
  typeof value === 'string' && (roles as readonly string[]).includes(value);

/**
 * Issues and verifies access tokens (RFC 9068 profile): ES256 with a `kid`, `typ: at+jwt`, and
 * `iss`, `aud`, `sub`, `iat`, `nbf`, `exp`, `jti`. User tokens carry `roles`; service tokens carry
 * `client_id` (equal to `sub`) and the called service as `aud`. Verification pins the algorithm,
 * so `alg: none` and HMAC tokens keyed with the public key are refused before any key is used.
 */
export function createAccessTokens(options: AccessTokenOptions): AccessTokens {
  const { keyRing, issuer, now = () => new Date(), verifiedCacheSize = 10_000 } = options;
  const clockTolerance = Math.ceil(options.clockToleranceMs / 1000);
  // Keyed by audience and the exact token text.
  const verified = new VerifiedTokenCache<JWTPayload>({
    size: verifiedCacheSize,
    clockToleranceSeconds: clockTolerance,
    now: () => now().getTime(),
  });

  async function issue(
    subject: string,
    audience: string,
    ttlMs: number,
    claims: JWTPayload,
  ): Promise<IssuedToken> {
    const issuedAt = Math.floor(now().getTime() / 1000);
    const expiresInSeconds = Math.floor(ttlMs / 1000);
    const token = await keyRing.sign(
      {
        ...claims,
        iss: issuer,
        aud: audience,
        sub: subject,
        iat: issuedAt,
        nbf: issuedAt,
        exp: issuedAt + expiresInSeconds,
        jti: randomUUID(),
      },
      ACCESS_TOKEN_TYPE,
    );
    return { token, expiresInSeconds };
  }

  async function verify(token: string, audience: string): Promise<JWTPayload> {
    const cacheKey = `${audience} ${token}`;
    const known = verified.recall(cacheKey);
    if (known !== undefined) return known;
    try {
      const { payload } = await jwtVerify(token, (header) => keyRing.verificationKey(header), {
        algorithms: [SIGNING_ALGORITHM],
        issuer,
        audience,
        typ: ACCESS_TOKEN_TYPE,
        clockTolerance,
        currentDate: now(),
        requiredClaims: ['iss', 'aud', 'sub', 'iat', 'exp', 'jti'],
      });
      verified.remember(cacheKey, payload, payload);
      return payload;
    } catch (error) {
      throw invalidAccessToken(error);
    }
  }

  return {
    issueForUser: (user) =>
      issue(user.id, options.userAudience, options.userTokenTtlMs, { roles: [user.role] }),

    issueForService: (clientId, audience) =>
      issue(clientId, audience, options.serviceTokenTtlMs, { client_id: clientId }),

    async verifyUser(token) {
      const payload = await verify(token, options.userAudience);
      const { sub, roles: claimed } = payload;
      if (
        payload.client_id !== undefined ||
        typeof sub !== 'string' ||
        !USER_ID_PATTERN.test(sub) ||
        !Array.isArray(claimed) ||
        !claimed.every(isRole)
      ) {
        throw invalidAccessToken('not a user token');
      }
      return { userId: sub, roles: claimed };
    },

    async verifyService(token, audience) {
      const payload = await verify(token, audience);
      if (typeof payload.client_id !== 'string' || payload.client_id !== payload.sub) {
        throw invalidAccessToken('not a service token');
      }
      return { clientId: payload.client_id };
    },
  };
}
