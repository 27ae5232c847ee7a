import { principalOf, requireUser, type VerifyAccessToken } from '@bazaar/auth';
import type { FastifyInstance } from 'fastify';
import { decodeCursor, encodeCursor } from './cursor';
import { invalidFields } from './errors';
import { IDEMPOTENCY_KEY_PATTERN } from './idempotency';
import { ORDER_ID_PATTERN, PAYMENT_TOKEN_PATTERN, PRODUCT_ID_PATTERN, type Order } from './order';
import type { OrderService, PlaceOrderRequest } from './order.service';

const moneySchema = {
  type: 'object',
  required: ['amount', 'currency'],
  properties: { amount: { type: 'integer' }, currency: { type: 'string' } },
} as const;

const orderSchema = {
  type: 'object',
  required: ['id', 'status', 'items', 'total', 'placedAt', 'deadline', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string' },
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['productId', 'name', 'quantity', 'unitPrice'],
        properties: {
          productId: { type: 'string' },
          name: { type: 'string' },
          quantity: { type: 'integer' },
          unitPrice: moneySchema,
        },
      },
    },
    total: moneySchema,
    cancelReason: { type: 'string' },
    placedAt: { type: 'string' },
    deadline: { type: 'string' },
    confirmedAt: { type: 'string' },
    cancelledAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

const placeOrderBody = {
  type: 'object',
  additionalProperties: false,
  required: ['items', 'payment'],
  properties: {
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['productId', 'quantity'],
        properties: {
          productId: { type: 'string', pattern: PRODUCT_ID_PATTERN },
          quantity: { type: 'integer', minimum: 1, maximum: 1000 },
        },
      },
    },
    payment: {
      type: 'object',
      additionalProperties: false,
      required: ['token'],
      properties: {
        // A processor token only; a long run of digits (a card number) is refused.
        token: { type: 'string', pattern: PAYMENT_TOKEN_PATTERN, not: { pattern: '[0-9]{12}' } },
      },
    },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: ORDER_ID_PATTERN } },
} as const;

const orderIdPattern = new RegExp(ORDER_ID_PATTERN);

export function orderView(order: Order) {
  return {
    id: order.id,
    status: order.status,
    items: order.items,
    total: order.total,
    ...(order.cancelReason === undefined ? {} : { cancelReason: order.cancelReason }),
    placedAt: order.placedAt.toISOString(),
    deadline: order.deadline.toISOString(),
    ...(order.confirmedAt === undefined ? {} : { confirmedAt: order.confirmedAt.toISOString() }),
    ...(order.cancelledAt === undefined ? {} : { cancelledAt: order.cancelledAt.toISOString() }),
    updatedAt: order.updatedAt.toISOString(),
  };
}

export function registerOrderRoutes(
  app: FastifyInstance,
  deps: { orders: OrderService; verify: VerifyAccessToken },
): void {
  const { orders } = deps;
  const onRequest = requireUser(deps.verify);

  app.post<{ Body: PlaceOrderRequest; Headers: { 'idempotency-key'?: string } }>(
    '/v1/orders',
    { onRequest, schema: { body: placeOrderBody } },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      if (key === undefined || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
        throw invalidFields([
          {
            path: 'headers.idempotency-key',
            message:
              key === undefined
                ? 'is required'
                : 'must be 1 to 255 printable ASCII characters without spaces',
          },
        ]);
      }
      const { userId } = principalOf(request);
      const { response, replayed } = await orders.place(userId, key, request.body);
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return reply.code(response.status).send(response.body);
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/orders',
    {
      onRequest,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            cursor: { type: 'string', minLength: 1, maxLength: 200 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'nextCursor'],
            properties: {
              items: { type: 'array', items: orderSchema },
              nextCursor: { type: ['string', 'null'] },
            },
          },
        },
      },
    },
    async (request) => {
      const before = decodeCursor(request.query.cursor, orderIdPattern);
      const { limit } = request.query;
      const page = await orders.list(principalOf(request).userId, limit + 1, before);
      const items = page.slice(0, limit);
      const last = items.at(-1);
      return {
        items: items.map(orderView),
        nextCursor: page.length > limit && last !== undefined ? encodeCursor(last.id) : null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/orders/:id',
    { onRequest, schema: { params: idParams, response: { 200: orderSchema } } },
    async (request) => orderView(await orders.get(principalOf(request).userId, request.params.id)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/orders/:id/cancel',
    { onRequest, schema: { params: idParams, response: { 200: orderSchema } } },
    async (request) =>
      orderView(await orders.cancel(principalOf(request).userId, request.params.id)),
  );
}
