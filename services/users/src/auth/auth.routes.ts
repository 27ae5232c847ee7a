import type { FastifyInstance } from 'fastify';
import type { AuthService } from './auth.service';
import { clientAddressOf } from './client-address';

export interface AuthRoutesDeps {
  readonly auth: AuthService;
  /** Peers whose `X-Forwarded-For` is believed. */
  readonly trustedProxies: ReadonlySet<string>;
}

const tokenPairSchema = {
  type: 'object',
  required: ['accessToken', 'refreshToken', 'tokenType', 'expiresIn'],
  properties: {
    accessToken: { type: 'string' },
    refreshToken: { type: 'string' },
    tokenType: { type: 'string' },
    expiresIn: { type: 'integer' },
  },
} as const;

const refreshBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['refreshToken'],
  properties: { refreshToken: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

export function registerAuthRoutes(app: FastifyInstance, deps: AuthRoutesDeps): void {
  const { auth, trustedProxies } = deps;

  app.post<{ Body: { email: string; password: string } }>(
    '/v1/auth/login',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['email', 'password'],
          properties: {
            email: { type: 'string', minLength: 1, maxLength: 512 },
            password: { type: 'string', minLength: 1, maxLength: 1024 },
          },
        },
        response: { 200: tokenPairSchema },
      },
    },
    async (request, reply) => {
      const clientAddress = clientAddressOf(
        request.socket.remoteAddress,
        request.headers['x-forwarded-for'],
        trustedProxies,
      );
      const pair = await auth.login(request.body.email, request.body.password, clientAddress);
      // Token responses must not be stored by any cache (RFC 6749 §5.1).
      reply.header('cache-control', 'no-store');
      return pair;
    },
  );

  app.post<{ Body: { refreshToken: string } }>(
    '/v1/auth/refresh',
    { schema: { body: refreshBodySchema, response: { 200: tokenPairSchema } } },
    async (request, reply) => {
      const pair = await auth.refresh(request.body.refreshToken);
      reply.header('cache-control', 'no-store');
      return pair;
    },
  );

  app.post<{ Body: { refreshToken: string } }>(
    '/v1/auth/logout',
    { schema: { body: refreshBodySchema } },
    async (request, reply) => {
      await auth.logout(request.body.refreshToken);
      return reply.status(204).send();
    },
  );

  app.post<{ Body: { clientId: string; clientSecret: string; audience: string } }>(
    '/internal/v1/tokens',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['clientId', 'clientSecret', 'audience'],
          properties: {
            clientId: { type: 'string', minLength: 1, maxLength: 64 },
            clientSecret: { type: 'string', minLength: 1, maxLength: 256 },
            audience: { type: 'string', minLength: 1, maxLength: 64 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['accessToken', 'tokenType', 'expiresIn'],
            properties: {
              accessToken: { type: 'string' },
              tokenType: { type: 'string' },
              expiresIn: { type: 'integer' },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const { clientId, clientSecret, audience } = request.body;
      const issued = await auth.issueServiceToken(clientId, clientSecret, audience);
      reply.header('cache-control', 'no-store');
      return { accessToken: issued.token, tokenType: 'Bearer', expiresIn: issued.expiresInSeconds };
    },
  );
}
