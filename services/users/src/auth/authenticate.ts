import { bearerTokenOf } from '@bazaar/auth';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { invalidAccessToken } from '../errors';
import type { AccessTokens, ServicePrincipal, UserPrincipal } from './access-tokens';

const REALM = 'bazaar';

async function authenticate<P>(
  request: FastifyRequest,
  reply: FastifyReply,
  verify: (token: string) => Promise<P>,
): Promise<P> {
  const token = bearerTokenOf(request);
  if (token === undefined) {
    reply.header('www-authenticate', `Bearer realm="${REALM}"`);
    throw invalidAccessToken();
  }
  try {
    return await verify(token);
  } catch (error) {
    reply.header('www-authenticate', `Bearer realm="${REALM}", error="invalid_token"`);
    throw error;
  }
}

// Who each authenticated request speaks for, set by the route's onRequest hook: authentication
// runs before the body is read or validated, so an anonymous caller learns nothing from a 400.
const users = new WeakMap<FastifyRequest, UserPrincipal>();
const services = new WeakMap<FastifyRequest, ServicePrincipal>();

/** An `onRequest` hook that admits only requests with a valid user access token. */
export function requireUser(tokens: Pick<AccessTokens, 'verifyUser'>): onRequestAsyncHookHandler {
  return async (request, reply) => {
    users.set(request, await authenticate(request, reply, (token) => tokens.verifyUser(token)));
  };
}

/** An `onRequest` hook that admits only requests with a valid service token for `audience`. */
export function requireService(
  tokens: Pick<AccessTokens, 'verifyService'>,
  audience: string,
): onRequestAsyncHookHandler {
  return async (request, reply) => {
    const principal = await authenticate(request, reply, (token) =>
      tokens.verifyService(token, audience),
    );
    services.set(request, principal);
  };
}

/** The user of a request admitted by {@link requireUser}. */
export function userOf(request: FastifyRequest): UserPrincipal {
  const principal = users.get(request);
  if (principal === undefined) throw new Error(`route ${request.url} lacks the requireUser hook`);
  return principal;
}

/** The service of a request admitted by {@link requireService}. */
export function serviceOf(request: FastifyRequest): ServicePrincipal {
  const principal = services.get(request);
  if (principal === undefined)
    throw new Error(`route ${request.url} lacks the requireService hook`);
  return principal;
}
