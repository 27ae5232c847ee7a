import type { FastifyInstance } from 'fastify';
import type { AccessTokens } from '../auth/access-tokens';
import { requireUser, userOf } from '../auth/authenticate';
import { adminOnly } from '../errors';
import type { KeyRing } from './key-ring';

export interface KeyRoutesDeps {
  readonly keyRing: KeyRing;
  readonly tokens: AccessTokens;
}

/** How long verifiers may cache the JWKS; they refetch at once on an unknown `kid` anyway. */
const JWKS_MAX_AGE_SECONDS = 60;

export function registerKeyRoutes(app: FastifyInstance, deps: KeyRoutesDeps): void {
  const { keyRing, tokens } = deps;

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    return keyRing.jwks();
  });

  app.post(
    '/v1/admin/signing-keys/rotations',
    { onRequest: requireUser(tokens) },
    async (request, reply) => {
      if (!userOf(request).roles.includes('admin')) throw adminOnly();
      const rotation = await keyRing.rotate();
      return reply.status(201).send({
        kid: rotation.kid,
        previousKid: rotation.previousKid,
        previousRetireAfter: rotation.previousRetireAfter?.toISOString() ?? null,
      });
    },
  );
}
