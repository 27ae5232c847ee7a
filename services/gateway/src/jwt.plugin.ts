import { AppError } from '@bazaar/errors';
import { createAccessTokenVerifier, type Principal } from '@bazaar/auth';
import type { JWTPayload } from 'jose';
import type { ConsumerSpec, PluginConfig } from './declarative';

/** Who made a request, as the gateway established it. */
export interface Identity {
  /** The token's subject. */
  readonly subject: string;
  /** The configured consumer the subject maps to, if any. */
  readonly consumer: ConsumerSpec | undefined;
  readonly claims: JWTPayload;
}

export type VerifyToken = (authorization: string | undefined) => Promise<Identity | undefined>;

function unauthenticated(detail: string, cause?: unknown): AppError {
  return new AppError('UNAUTHENTICATED', detail, cause === undefined ? {} : { cause });
}

/**
 * Verifies Bearer tokens with `@bazaar/auth` (JWKS, asymmetric algorithms only, `iss`, `aud`,
 * `exp`/`nbf` with a small clock skew, verified tokens remembered) and maps them to consumers. Returns undefined for a missing token when anonymous access
 * is allowed; throws UNAUTHENTICATED otherwise. The token still travels upstream: services verify it
 * again and trust the identity headers only alongside it.
 */
export function createTokenVerifier(
  config: PluginConfig<'jwt'>,
  consumers: readonly ConsumerSpec[],
  options: { readonly verifiedCacheSize?: number; readonly now?: () => number } = {},
): VerifyToken {
  const verifyAccessToken = createAccessTokenVerifier({
    jwksUrl: config.jwks_uri,
    jwksCooldownMs: config.jwks_cooldown_ms,
    jwksCacheMaxAgeMs: config.jwks_cache_max_age_ms,
    issuer: config.issuer,
    audience: config.audiences,
    algorithms: config.algorithms,
    clockToleranceSeconds: config.clock_skew_seconds,
    ...(options.verifiedCacheSize === undefined ? {} : { cacheSize: options.verifiedCacheSize }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const bySubject = new Map(consumers.map((consumer) => [consumer.custom_id, consumer]));
  // A remembered token yields the same principal object: map it once, not on every request.
  const identities = new WeakMap<Principal, Identity>();

  return async (authorization) => {
    if (authorization === undefined || authorization === '') {
      if (config.anonymous) return undefined;
      throw unauthenticated('A Bearer token is required.');
    }
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i.exec(authorization);
    if (match?.[1] === undefined) throw unauthenticated('The Authorization header is malformed.');
    const principal = await verifyAccessToken(match[1]);
    const known = identities.get(principal);
    if (known !== undefined) return known;
    const { userId: subject, claims } = principal;
    const clientId =
      typeof claims.client_id === 'string'
        ? claims.client_id
        : typeof claims.azp === 'string'
          ? claims.azp
          : undefined;
    const identity: Identity = {
      subject,
      consumer:
        bySubject.get(subject) ?? (clientId === undefined ? undefined : bySubject.get(clientId)),
      claims,
    };
    identities.set(principal, identity);
    return identity;
  };
}
