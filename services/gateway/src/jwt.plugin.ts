import { AppError } from '@bazaar/errors';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
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
 * Verifies Bearer tokens against a JWKS (cached; fetched again when a token names an unknown `kid`,
 * at most once per cooldown): signature with an allowed asymmetric algorithm only, `iss`, `aud`,
 * `exp`/`nbf` with a small clock skew. Returns undefined for a missing token when anonymous access
 * is allowed; throws UNAUTHENTICATED otherwise. The token still travels upstream: services verify it
 * again and trust the identity headers only alongside it.
 */
export function createTokenVerifier(
  config: PluginConfig<'jwt'>,
  consumers: readonly ConsumerSpec[],
  options: { readonly verifiedCacheSize?: number; readonly now?: () => number } = {},
): VerifyToken {
  const { verifiedCacheSize = 10_000, now = Date.now } = options;
  const jwks = createRemoteJWKSet(new URL(config.jwks_uri), {
    cooldownDuration: config.jwks_cooldown_ms,
    cacheMaxAge: config.jwks_cache_max_age_ms,
    timeoutDuration: 2000,
  });
  const bySubject = new Map(consumers.map((consumer) => [consumer.custom_id, consumer]));
  // A client sends the same token for its whole life, and an ES256 verification costs more CPU than
  // the rest of the gateway's work on a request. The signature and the fixed claims (iss, aud, alg,
  // kid) of a token cannot change, so they are verified once; the time claims (exp, nbf) are checked
  // again on every use. Keys leave a JWKS only after the tokens they signed expire, so a remembered
  // token does not outlive its key. Keyed by the exact token text; bounded (oldest out first).
  const verified = new Map<string, Identity>();
  const clockSkew = config.clock_skew_seconds;

  function recall(token: string): Identity | undefined {
    const identity = verified.get(token);
    if (identity === undefined) return undefined;
    const { exp, nbf } = identity.claims;
    const at = now() / 1000;
    const isCurrent =
      typeof exp === 'number' &&
      exp + clockSkew > at &&
      (typeof nbf !== 'number' || nbf - clockSkew <= at);
    if (isCurrent) return identity;
    verified.delete(token);
    return undefined;
  }

  function remember(token: string, identity: Identity): void {
    if (verifiedCacheSize === 0) return;
    if (verified.size >= verifiedCacheSize) {
      const oldest = verified.keys().next();
      if (oldest.done !== true) verified.delete(oldest.value);
    }
    verified.set(token, identity);
  }

  return async (authorization) => {
    if (authorization === undefined || authorization === '') {
      if (config.anonymous) return undefined;
      throw unauthenticated('A Bearer token is required.');
    }
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i.exec(authorization);
    if (match?.[1] === undefined) throw unauthenticated('The Authorization header is malformed.');
    const token = match[1];
    const known = recall(token);
    if (known !== undefined) return known;
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: config.issuer,
        audience: config.audiences,
        algorithms: config.algorithms,
        clockTolerance: config.clock_skew_seconds,
        currentDate: new Date(now()),
        requiredClaims: ['sub', 'exp'],
      });
      const subject = payload.sub ?? '';
      const clientId =
        typeof payload.client_id === 'string'
          ? payload.client_id
          : typeof payload.azp === 'string'
            ? payload.azp
            : undefined;
      const identity: Identity = {
        subject,
        consumer:
          bySubject.get(subject) ?? (clientId === undefined ? undefined : bySubject.get(clientId)),
        claims: payload,
      };
      remember(token, identity);
      return identity;
    } catch (error) {
      if (error instanceof errors.JWTExpired)
        throw unauthenticated('The token has expired.', error);
      if (error instanceof errors.JOSEError)
        throw unauthenticated('The token is not valid.', error);
      throw error;
    }
  };
}
