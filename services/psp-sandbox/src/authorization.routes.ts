import { setTimeout as sleep } from 'node:timers/promises';
import { isAppError, PROBLEM_CONTENT_TYPE, toProblem } from '@bazaar/errors';
import { pathOf } from '@bazaar/service-kit';
import { trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthorizationRequest, Money } from './authorization';
import type { AuthorizationService } from './authorization.service';
import { faultInjected, idempotencyKeyInUse, idempotencyKeyReused } from './errors';
import type { FaultPlan, Operation } from './fault';
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

const amountBodySchema = {
  type: 'object',
  required: ['amount'],
  additionalProperties: false,
  properties: { amount: moneySchema },
} as const;

const emptyBodySchema = { type: 'object', additionalProperties: false, properties: {} } as const;

const idParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^auth_[A-Za-z0-9_-]{1,64}$' } },
} as const;

const headersSchema = {
  type: 'object',
  required: ['idempotency-key'],
  properties: {
    'idempotency-key': { type: 'string', pattern: '^[\\x21-\\x7E]{1,255}$' },
  },
} as const;

const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { reference: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

/** Whether a failure is the answer to this request (stored and replayed) or an accident (not). */
function isDecidedFailure(error: unknown): boolean {
  return isAppError(error) && error.status < 500;
}

/**
 * Aborts when the reply was sent by someone else while the operation runs — the request deadline's
 * 503. Not `request.signal`: fastify aborts that when the request *body* has been read (Node's
 * IncomingMessage 'close'), and a processor, like a real one, finishes an operation whose caller
 * hung up — the stored reply is what the caller's retry with the same key receives.
 */
function answeredElsewhere(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('finish', () => controller.abort());
  return controller.signal;
}

function send(reply: FastifyReply, stored: StoredReply): FastifyReply {
  return reply.status(stored.status).type(stored.contentType).send(stored.body);
}

export interface AuthorizationRoutesDeps {
  readonly service: AuthorizationService;
  readonly idempotency: IdempotencyRepository;
  readonly faults: FaultPlan;
  /** Waited before every operation (`PSP_SANDBOX_LATENCY_MS`). */
  readonly baseLatencyMs?: number;
}

/**
 * The processor's API: authorize, capture, void and refund, each keyed by `Idempotency-Key` — the
 * key's first reply (success or decided failure) is the reply to every retry with the same request.
 * Injected faults (see fault.ts) are applied around the operation, as a real outage would be.
 */
export function registerAuthorizationRoutes(
  app: FastifyInstance,
  deps: AuthorizationRoutesDeps,
): void {
  const { service, idempotency, faults, baseLatencyMs = 0 } = deps;

  async function idempotent(
    request: FastifyRequest,
    reply: FastifyReply,
    operation: Operation,
    perform: (signal: AbortSignal) => Promise<unknown>,
  ): Promise<FastifyReply> {
    const key = request.headers['idempotency-key'] as string;
    // The key covers the operation and its target as well as the body: a key reused on another
    // route is a different request, refused like another body.
    const begun = idempotency.begin(
      key,
      fingerprintOf({ operation, url: request.url, body: request.body ?? {} }),
    );
    if (begun.kind === 'mismatch') throw idempotencyKeyReused();
    if (begun.kind === 'in_progress') throw idempotencyKeyInUse();
    if (begun.kind === 'replay') {
      reply.header('idempotent-replayed', 'true');
      return send(reply, begun.reply);
    }

    const fault = faults.take(operation);
    const latencyMs = baseLatencyMs + (fault?.mode === 'latency' ? fault.delayMs : 0);
    if (latencyMs > 0) await sleep(latencyMs);
    if (fault?.mode === 'fail_before') {
      idempotency.abandon(key);
      throw faultInjected();
    }

    const signal = answeredElsewhere(reply);
    let stored: StoredReply;
    try {
      const result = await perform(signal);
      stored = {
        status: operation === 'authorize' || operation === 'refund' ? 201 : 200,
        contentType: 'application/json',
        body: result,
      };
    } catch (error) {
      if (!isDecidedFailure(error)) {
        // Nothing was decided: a retry with the same key must be processed afresh.
        idempotency.abandon(key);
        // The request deadline already answered 503 and aborted the wait; nothing is left to send.
        if (signal.aborted) return reply;
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
    // The effect happened and is stored; the caller just does not hear about it (in time).
    if (fault?.mode === 'fail_after') throw faultInjected();
    if (fault?.mode === 'delay_after') await sleep(fault.delayMs);
    return send(reply, stored);
  }

  app.post(
    '/v1/authorizations',
    { schema: { body: authorizationBodySchema, headers: headersSchema } },
    (request, reply) =>
      idempotent(request, reply, 'authorize', (signal) =>
        service.authorize(request.body as AuthorizationRequest, signal),
      ),
  );

  app.post(
    '/v1/authorizations/:id/capture',
    { schema: { params: idParamsSchema, body: amountBodySchema, headers: headersSchema } },
    (request, reply) =>
      idempotent(request, reply, 'capture', () =>
        Promise.resolve(
          service.capture(
            (request.params as { id: string }).id,
            (request.body as { amount: Money }).amount,
          ),
        ),
      ),
  );

  app.post(
    '/v1/authorizations/:id/void',
    { schema: { params: idParamsSchema, body: emptyBodySchema, headers: headersSchema } },
    (request, reply) =>
      idempotent(request, reply, 'void', () =>
        Promise.resolve(service.void((request.params as { id: string }).id)),
      ),
  );

  app.post(
    '/v1/authorizations/:id/refunds',
    { schema: { params: idParamsSchema, body: amountBodySchema, headers: headersSchema } },
    (request, reply) =>
      idempotent(request, reply, 'refund', () => {
        const id = (request.params as { id: string }).id;
        const { amount } = request.body as { amount: Money };
        const record = service.refund(id, amount);
        return Promise.resolve({
          authorizationId: id,
          amount,
          refundedAmount: record.refundedAmount,
          capturedAmount: record.capturedAmount,
        });
      }),
  );

  // The processor's own record of what it authorized, captured and refunded, as a processor's
  // dashboard or reconciliation report shows it; tests compare payments' books against it.
  app.get('/v1/authorizations', { schema: { querystring: listQuerySchema } }, (request) => {
    const { reference } = request.query as { reference?: string };
    return Promise.resolve({ items: service.list(reference) });
  });
}
