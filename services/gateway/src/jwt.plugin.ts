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
): VerifyToken {
  const jwks = createRemoteJWKSet(new URL(config.jwks_uri), {
    cooldownDuration: config.jwks_cooldown_ms,
    cacheMaxAge: config.jwks_cache_max_age_ms,
    timeoutDuration: 2000,
  });
  const bySubject = new Map(consumers.map((consumer) => [consumer.custom_id, consumer]));
  return async (authorization) => {
    if (authorization === undefined || authorization === '') {
      if (config.anonymous) return undefined;
      throw unauthenticated('A Bearer token is required.');
    }
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i.exec(authorization);
    if (match?.[1] === undefined) throw unauthenticated('The Authorization header is malformed.');
    try {
      const { payload } = await jwtVerify(match[1], jwks, {
        issuer: config.issuer,
        audience: config.audiences,
        algorithms: config.algorithms,
        clockTolerance: config.clock_skew_seconds,
        requiredClaims: ['sub', 'exp'],
      });
      const subject = payload.sub ?? '';
      const clientId =
        typeof payload.client_id === 'string'
          ? payload.client_id
          : typeof payload.azp === 'string'
            ? payload.azp
            : undefined;
      return {
        subject,
        consumer:
          bySubject.get(subject) ?? (clientId === undefined ? undefined : bySubject.get(clientId)),
        claims: payload,
      };
    } catch (error) {
      if (error instanceof errors.JWTExpired)
        throw unauthenticated('The token has expired.', error);
      if (error instanceof errors.JOSEError)
        throw unauthenticated('The token is not valid.', error);
      throw error;
    }
  };
}
