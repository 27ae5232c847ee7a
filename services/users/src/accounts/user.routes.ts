import type { FastifyInstance } from 'fastify';
import type { AccessTokens } from '../auth/access-tokens';
import { INTERNAL_AUDIENCE } from '../auth/access-tokens';
import { requireService, requireUser, userOf } from '../auth/authenticate';
import { EMAIL_MAX_LENGTH, NAME_MAX_LENGTH } from './user';
import type { UserService } from './user.service';

export interface UserRoutesDeps {
  readonly users: UserService;
  readonly tokens: AccessTokens;
}

const profileSchema = {
  type: 'object',
  required: ['id', 'email', 'name', 'role', 'emailVerified', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string' },
    emailVerified: { type: 'boolean' },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

// Lengths here only stop absurd bodies; the domain rules (user.ts) word the real limits.
const registrationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['email', 'password', 'name'],
  properties: {
    email: { type: 'string', maxLength: EMAIL_MAX_LENGTH * 2 },
    password: { type: 'string', maxLength: 1024 },
    name: { type: 'string', maxLength: NAME_MAX_LENGTH * 4 },
  },
} as const;

// `additionalProperties: false` is the mass-assignment guard: `role`, `emailVerified`, `email` or
// `id` in the body is a VALIDATION_FAILED naming the field, never silently applied or dropped.
const profileUpdateSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: { type: 'string', maxLength: NAME_MAX_LENGTH * 4 },
  },
} as const;

interface RegistrationBody {
  email: string;
  password: string;
  name: string;
}

export function registerUserRoutes(app: FastifyInstance, deps: UserRoutesDeps): void {
  const { users, tokens } = deps;
  const onRequest = requireUser(tokens);

  app.post<{ Body: RegistrationBody }>(
    '/v1/users',
    {
      schema: {
        body: registrationSchema,
        response: {
          201: {
            type: 'object',
            required: ['id', 'email', 'name'],
            properties: {
              id: { type: 'string' },
              email: { type: 'string' },
              name: { type: 'string' },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const profile = await users.register(request.body);
      return reply.status(201).header('location', '/v1/users/me').send(profile);
    },
  );

  app.get(
    '/v1/users/me',
    { onRequest, schema: { response: { 200: profileSchema } } },
    async (request, reply) => {
      reply.header('cache-control', 'private, no-store');
      return users.profile(userOf(request).userId);
    },
  );

  app.patch<{ Body: { name?: string } }>(
    '/v1/users/me',
    { onRequest, schema: { body: profileUpdateSchema, response: { 200: profileSchema } } },
    async (request, reply) => {
      reply.header('cache-control', 'private, no-store');
      return users.updateProfile(userOf(request).userId, request.body);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/internal/v1/users/:id',
    {
      onRequest: requireService(tokens, INTERNAL_AUDIENCE),
      schema: {
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^usr_[A-Za-z0-9_-]{1,64}$' } },
        },
        response: { 200: profileSchema },
      },
    },
    async (request) => users.profile(request.params.id),
  );
}
