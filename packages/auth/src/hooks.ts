import { AppError } from '@bazaar/errors';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { unauthenticated, type Principal, type VerifyAccessToken } from './verifier';

const REALM = 'bazaar';

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), if there is one. */
export function bearerTokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return match?.[1];
}

// Who each authenticated request speaks for, set by the route's onRequest hook: authentication
// runs before the body is read or validated, so an anonymous caller learns nothing from a 400.
const principals = new WeakMap<FastifyRequest, Principal>();

async function authenticate(
  request: FastifyRequest,
  reply: FastifyReply,
  verify: VerifyAccessToken,
): Promise<Principal> {
  const token = bearerTokenOf(request);
  if (token === undefined) {
    reply.header('www-authenticate', `Bearer realm="${REALM}"`);
    throw unauthenticated('A Bearer token is required.');
  }
  try {
    return await verify(token);
  } catch (error) {
    reply.header('www-authenticate', `Bearer realm="${REALM}", error="invalid_token"`);
    throw error;
  }
}

/**
 * An `onRequest` hook that admits only requests with a valid user access token. The service
 * verifies the token itself: the gateway's identity headers are not trusted on their own, since
 * every service port is reachable without the gateway.
 */
export function requireUser(verify: VerifyAccessToken): onRequestAsyncHookHandler {
  return async (request, reply) => {
    principals.set(request, await authenticate(request, reply, verify));
  };
}

/** An `onRequest` hook that admits only users holding `role` (403 FORBIDDEN otherwise). */
export function requireRole(verify: VerifyAccessToken, role: string): onRequestAsyncHookHandler {
  return async (request, reply) => {
    const principal = await authenticate(request, reply, verify);
    if (!principal.roles.includes(role)) {
      throw new AppError('FORBIDDEN', `This operation needs the "${role}" role.`);
    }
    principals.set(request, principal);
  };
}

/** The user of a request admitted by {@link requireUser} or {@link requireRole}. */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (principal === undefined) {
    throw new Error(`route ${request.url} lacks the requireUser or requireRole hook`);
  }
  return principal;
}

export function isAdmin(principal: Principal): boolean {
  return principal.roles.includes('admin');
}
