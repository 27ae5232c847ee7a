import { principalOf, requireRole, requireUser, type VerifyAccessToken } from '@bazaar/auth';
import type { FastifyInstance } from 'fastify';
import type { Money, Payment } from './payment';
import type { Refund } from './payment.repository';
import type { PaymentService } from './payment.service';

const moneySchema = {
  type: 'object',
  required: ['amount', 'currency'],
  additionalProperties: false,
  properties: {
    amount: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
  },
} as const;

const listQuerySchema = {
  type: 'object',
  required: ['orderId'],
  additionalProperties: false,
  properties: { orderId: { type: 'string', pattern: '^ord_[A-Za-z0-9_-]{1,64}$' } },
} as const;

const paymentParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^pay_[A-Za-z0-9_-]{1,64}$' } },
} as const;

const refundBodySchema = {
  type: 'object',
  required: ['amount'],
  additionalProperties: false,
  properties: { amount: moneySchema },
} as const;

const idempotencyHeadersSchema = {
  type: 'object',
  required: ['idempotency-key'],
  properties: { 'idempotency-key': { type: 'string', pattern: '^[\\x21-\\x7E]{1,255}$' } },
} as const;

/** The public shape of a payment (contracts/http/payments.openapi.yaml `Payment`). */
export function paymentBody(payment: Payment) {
  const { currency } = payment.amount;
  return {
    id: payment.id,
    orderId: payment.orderId,
    status: payment.status,
    amount: payment.amount,
    captured: { amount: payment.capturedAmount, currency },
    refunded: { amount: payment.refundedAmount, currency },
    ...(payment.failure === null ? {} : { failureReason: payment.failure }),
    createdAt: payment.createdAt.toISOString(),
    updatedAt: payment.updatedAt.toISOString(),
  };
}

function refundBody(refund: Refund) {
  return {
    id: refund.id,
    paymentId: refund.paymentId,
    status: refund.status,
    amount: refund.amount,
    createdAt: refund.createdAt.toISOString(),
  };
}

/** `GET /v1/payments?orderId=` (the order's owner or an admin) and `POST /v1/payments/{id}/refunds` (admin). */
export function registerPaymentRoutes(
  app: FastifyInstance,
  deps: { readonly service: PaymentService; readonly verify: VerifyAccessToken },
): void {
  const { service, verify } = deps;

  app.get(
    '/v1/payments',
    { onRequest: requireUser(verify), schema: { querystring: listQuerySchema } },
    async (request) => {
      const { orderId } = request.query as { orderId: string };
      // Someone else's order reads as an order without payments: nothing about it is revealed.
      const payments = await service.listByOrder(orderId, principalOf(request));
      return { items: payments.map(paymentBody) };
    },
  );

  app.post(
    '/v1/payments/:id/refunds',
    {
      onRequest: requireRole(verify, 'admin'),
      schema: {
        params: paymentParamsSchema,
        body: refundBodySchema,
        headers: idempotencyHeadersSchema,
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const { amount } = request.body as { amount: Money };
      const { refund, isReplay } = await service.refund({
        paymentId: id,
        amount,
        idempotencyKey: request.headers['idempotency-key'] as string,
      });
      if (isReplay) reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(refundBody(refund));
    },
  );
}
