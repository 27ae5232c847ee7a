import { principalOf, requireRole, requireUser, type VerifyAccessToken } from '@bazaar/auth';
import type { FastifyInstance } from 'fastify';
import { idempotencyKeyRequired } from './errors';
import type { Delivery, DeliveryStatus, InboxEntry, Preferences } from './notification.repository';
import type { NotificationService } from './notification.service';

export interface NotificationRoutesDeps {
  readonly notifications: NotificationService;
  readonly verify: VerifyAccessToken;
}

const entrySchema = {
  type: 'object',
  required: ['id', 'kind', 'category', 'title', 'body', 'createdAt', 'readAt'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    category: { type: 'string' },
    title: { type: 'string' },
    body: { type: 'string' },
    createdAt: { type: 'string' },
    readAt: { type: ['string', 'null'] },
  },
} as const;

const preferencesSchema = {
  type: 'object',
  required: ['marketingEmail', 'updatedAt'],
  properties: {
    marketingEmail: { type: 'boolean' },
    updatedAt: { type: ['string', 'null'] },
  },
} as const;

const deliverySchema = {
  type: 'object',
  required: [
    'id',
    'template',
    'category',
    'status',
    'attempts',
    'lastError',
    'createdAt',
    'updatedAt',
    'sentAt',
  ],
  properties: {
    id: { type: 'string' },
    template: { type: 'string' },
    category: { type: 'string' },
    recipient: { type: 'string' },
    status: { type: 'string' },
    attempts: { type: 'integer' },
    lastError: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    sentAt: { type: ['string', 'null'] },
  },
} as const;

const inboxIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^ntf_[0-9A-Z]{26}$' } },
} as const;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

function entryView(entry: InboxEntry) {
  return {
    id: entry.id,
    kind: entry.kind,
    category: entry.category,
    title: entry.title,
    body: entry.body,
    createdAt: entry.createdAt.toISOString(),
    readAt: entry.readAt?.toISOString() ?? null,
  };
}

function preferencesView(preferences: Preferences) {
  return {
    marketingEmail: preferences.marketingEmail,
    updatedAt: preferences.updatedAt?.toISOString() ?? null,
  };
}

/** Operators' view of a delivery: no addresses, no message content. */
function deliveryView(delivery: Delivery) {
  return {
    id: delivery.id,
    template: delivery.template,
    category: delivery.category,
    recipient: delivery.recipientKey,
    status: delivery.status,
    attempts: delivery.attempts,
    lastError: delivery.lastError,
    createdAt: delivery.createdAt.toISOString(),
    updatedAt: delivery.updatedAt.toISOString(),
    sentAt: delivery.sentAt?.toISOString() ?? null,
  };
}

export function registerNotificationRoutes(app: FastifyInstance, deps: NotificationRoutesDeps) {
  const { notifications } = deps;
  const asUser = requireUser(deps.verify);
  const asAdmin = requireRole(deps.verify, 'admin');

  app.get<{ Querystring: { cursor?: string; limit: number; unread: boolean } }>(
    '/v1/notifications',
    {
      onRequest: asUser,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cursor: { type: 'string', minLength: 1, maxLength: 200 },
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            unread: { type: 'boolean', default: false },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'nextCursor', 'unreadCount'],
            properties: {
              items: { type: 'array', items: entrySchema },
              nextCursor: { type: ['string', 'null'] },
              unreadCount: { type: 'integer' },
            },
          },
        },
      },
    },
    async (request) => {
      const { userId } = principalOf(request);
      const page = await notifications.listInbox(userId, {
        ...(request.query.cursor === undefined ? {} : { cursor: request.query.cursor }),
        limit: request.query.limit,
        unreadOnly: request.query.unread,
      });
      return { ...page, items: page.items.map(entryView) };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/notifications/:id/read',
    {
      onRequest: asUser,
      schema: { params: inboxIdParams, response: { 200: entrySchema } },
    },
    async (request) => {
      const { userId } = principalOf(request);
      return entryView(await notifications.markRead(userId, request.params.id));
    },
  );

  app.get(
    '/v1/notifications/preferences',
    { onRequest: asUser, schema: { response: { 200: preferencesSchema } } },
    async (request) =>
      preferencesView(await notifications.preferencesOf(principalOf(request).userId)),
  );

  app.patch<{ Body: { marketingEmail: boolean } }>(
    '/v1/notifications/preferences',
    {
      onRequest: asUser,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['marketingEmail'],
          properties: { marketingEmail: { type: 'boolean' } },
        },
        response: { 200: preferencesSchema },
      },
    },
    async (request) =>
      preferencesView(
        await notifications.updatePreferences(principalOf(request).userId, request.body),
      ),
  );

  app.post<{ Body: { title: string; text: string }; Headers: { 'idempotency-key'?: string } }>(
    '/v1/notifications/announcements',
    {
      onRequest: asAdmin,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['title', 'text'],
          properties: {
            title: { type: 'string', minLength: 1, maxLength: 200 },
            text: { type: 'string', minLength: 1, maxLength: 10_000 },
          },
        },
        response: {
          202: {
            type: 'object',
            required: ['recipients'],
            properties: { recipients: { type: 'integer' } },
          },
        },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      if (key === undefined || !IDEMPOTENCY_KEY.test(key)) throw idempotencyKeyRequired();
      return reply.status(202).send(await notifications.announce(key, request.body));
    },
  );

  app.get<{ Querystring: { status?: DeliveryStatus; limit: number } }>(
    '/v1/notifications/deliveries',
    {
      onRequest: asAdmin,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: ['pending', 'sending', 'sent', 'dead', 'suppressed'] },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: deliverySchema } },
          },
        },
      },
    },
    async (request) => ({
      items: (
        await notifications.listDeliveries({
          ...(request.query.status === undefined ? {} : { status: request.query.status }),
          limit: request.query.limit,
        })
      ).map(deliveryView),
    }),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/notifications/deliveries/:id/retry',
    {
      onRequest: asAdmin,
      schema: {
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^dlv_[0-9A-Z]{26}$' } },
        },
        response: { 202: deliverySchema },
      },
    },
    async (request, reply) =>
      reply.status(202).send(deliveryView(await notifications.retryDelivery(request.params.id))),
  );
}
