import { AppError } from '@bazaar/errors';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { VerifiedTokenCache } from './verified-token-cache';

/** A user, as a verified access token describes them. */
export interface Principal {
  readonly userId: string;
  readonly roles: readonly string[];
  readonly claims: JWTPayload;
}

export interface VerifierOptions {
  /** Where the issuer publishes its signing keys (`/.well-known/jwks.json` of the users service). */
  readonly jwksUrl?: string;
  /** A key source instead of `jwksUrl` (tests). */
  readonly keys?: JWTVerifyGetKey;
  readonly issuer: string;
  readonly audience: string | readonly string[];
  /** Asymmetric algorithms only: a symmetric one would let the public key sign tokens. */
  readonly algorithms?: readonly string[];
  readonly clockToleranceSeconds?: number;
  /** JWKS refetch limits: at most one refetch per cooldown; keys kept at most this long. */
  readonly jwksCooldownMs?: number;
  readonly jwksCacheMaxAgeMs?: number;
  /** How many verified tokens to remember (0 turns the cache off). */
  readonly cacheSize?: number;
  readonly now?: () => number;
}

export type VerifyAccessToken = (token: string) => Promise<Principal>;

export function unauthenticated(detail: string, cause?: unknown): AppError {
  return new AppError('UNAUTHENTICATED', detail, cause === undefined ? {} : { cause });
}

/**
 * Verifies user access tokens: the signature with an allowed asymmetric algorithm, `iss`, `aud`,
 * `exp`/`nbf` with a small clock skew, and a `sub`. Keys come from the JWKS (cached; fetched again
 * when a token names an unknown `kid`, at most once per cooldown).
 * Verified tokens are remembered ({@link VerifiedTokenCache}).
 *
 * @throws `AppError('UNAUTHENTICATED')` for any token that does not pass
 */
export function createAccessTokenVerifier(options: VerifierOptions): VerifyAccessToken {
  const {
    algorithms = ['ES256'],
    clockToleranceSeconds = 5,
    cacheSize = 10_000,
    now = Date.now,
  } = options;
  if (algorithms.some((alg) => alg.startsWith('HS') || alg === 'none')) {
    throw new Error(
      `only asymmetric algorithms may verify access tokens, got ${algorithms.join()}`,
    );
  }
  const keys =
    options.keys ??
    (options.jwksUrl === undefined
      ? undefined
      : createRemoteJWKSet(new URL(options.jwksUrl), {
          timeoutDuration: 2000,
          ...(options.jwksCooldownMs === undefined
            ? {}
            : { cooldownDuration: options.jwksCooldownMs }),
          ...(options.jwksCacheMaxAgeMs === undefined
            ? {}
            : { cacheMaxAge: options.jwksCacheMaxAgeMs }),
        }));
  if (keys === undefined) throw new Error('createAccessTokenVerifier needs jwksUrl or keys');
  const verified = new VerifiedTokenCache<Principal>({
    size: cacheSize,
    clockToleranceSeconds,
    now,
  });

  return async (token) => {
    const known = verified.recall(token);
    if (known !== undefined) return known;
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: options.issuer,
        audience: typeof options.audience === 'string' ? options.audience : [...options.audience],
        algorithms: [...algorithms],
        clockTolerance: clockToleranceSeconds,
        currentDate: new Date(now()),
        requiredClaims: ['sub', 'exp'],
      });
      const roles = Array.isArray(payload.roles)
        ? payload.roles.filter((role): role is string => typeof role === 'string')
        : [];
      const principal: Principal = { userId: payload.sub ?? '', roles, claims: payload };
      if (principal.userId === '') throw unauthenticated('The token has no subject.');
      verified.remember(token, principal, payload);
      return principal;
    } catch (error) {
      if (error instanceof errors.JWTExpired)
        throw unauthenticated('The token has expired.', error);
      if (error instanceof errors.JOSEError)
        throw unauthenticated('The token is not valid.', error);
      throw error;
    }
  };
}
