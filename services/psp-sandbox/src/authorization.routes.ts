import { isAppError, PROBLEM_CONTENT_TYPE, toProblem } from '@bazaar/errors';
import { pathOf } from '@bazaar/service-kit';
import { trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AuthorizationRequest } from './authorization';
import type { AuthorizationService } from './authorization.service';
import { idempotencyKeyInUse, idempotencyKeyReused } from './errors';
import {
  fingerprintOf,
  type IdempotencyRepository,
  type StoredReply,
} from './idempotency.repository';

const moneySchema = {
  type: 'object',
  required: ['amount', 'currency'],
  additionalProperties: false,
  properties: {
    amount: { type: 'integer', minimum: 1 },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
  },
} as const;

const authorizationBodySchema = {
  type: 'object',
  required: ['token', 'amount', 'reference'],
  additionalProperties: false,
  properties: {
    token: { type: 'string', minLength: 1, maxLength: 255 },
    amount: moneySchema,
    reference: { type: 'string', minLength: 1, maxLength: 255 },
  },
} as const;

const headersSchema = {
  type: 'object',
  required: ['idempotency-key'],
  properties: {
    'idempotency-key': { type: 'string', pattern: '^[\\x21-\\x7E]{1,255}$' },
  },
} as const;

/** Whether a failure is the answer to this request (stored and replayed) or an accident (not). */
function isDecidedFailure(error: unknown): boolean {
  return isAppError(error) && error.status < 500;
}

function send(reply: FastifyReply, stored: StoredReply): FastifyReply {
  return reply.status(stored.status).type(stored.contentType).send(stored.body);
}

/** The processor's API: `POST /v1/authorizations`. */
export function registerAuthorizationRoutes(
  app: FastifyInstance,
  deps: { readonly service: AuthorizationService; readonly idempotency: IdempotencyRepository },
): void {
  const { service, idempotency } = deps;

  app.post(
    '/v1/authorizations',
    { schema: { body: authorizationBodySchema, headers: headersSchema } },
    async (request, reply) => {
      const body = request.body as AuthorizationRequest;
      const key = request.headers['idempotency-key'] as string;
      const begun = idempotency.begin(key, fingerprintOf(body));
      if (begun.kind === 'mismatch') throw idempotencyKeyReused();
      if (begun.kind === 'in_progress') throw idempotencyKeyInUse();
      if (begun.kind === 'replay') {
        reply.header('idempotent-replayed', 'true');
        return send(reply, begun.reply);
      }

      let stored: StoredReply;
      try {
        const authorization = await service.authorize(body, request.signal);
        stored = { status: 201, contentType: 'application/json', body: authorization };
      } catch (error) {
        if (!isDecidedFailure(error)) {
          // Nothing was decided: a retry with the same key must be processed afresh.
          idempotency.abandon(key);
          // The request deadline already answered 503 and aborted the wait; nothing is left to send.
          if (request.signal.aborted) return reply;
          throw error;
        }
        const traceId = trace.getActiveSpan()?.spanContext().traceId;
        stored = {
          status: (error as { status: number }).status,
          contentType: PROBLEM_CONTENT_TYPE,
          body: toProblem(error, {
            instance: pathOf(request),
            ...(traceId === undefined ? {} : { traceId }),
          }),
        };
      }
      idempotency.complete(key, stored);
      return send(reply, stored);
    },
  );
}
