import type { FastifyInstance } from 'fastify';
import { faultsDisabled } from './errors';
import { operations, type FaultPlan, type FaultRule } from './fault';

const faultRuleSchema = {
  type: 'object',
  required: ['mode'],
  additionalProperties: false,
  properties: {
    mode: { type: 'string', enum: ['fail_before', 'fail_after', 'delay_after', 'latency'] },
    operation: { type: 'string', enum: [...operations] },
    count: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    delayMs: { type: 'integer', minimum: 0, maximum: 120_000 },
  },
} as const;

/**
 * Test controls, like a processor's test-mode switches: `POST /v1/sandbox/faults` arms a fault,
 * `GET` lists the armed ones, `DELETE` clears them. Refused (404) unless enabled by the config.
 */
export function registerFaultRoutes(
  app: FastifyInstance,
  deps: { readonly faults: FaultPlan; readonly isEnabled: boolean },
): void {
  const { faults, isEnabled } = deps;
  const guard = () => {
    if (!isEnabled) throw faultsDisabled();
  };
  app.post('/v1/sandbox/faults', { schema: { body: faultRuleSchema } }, (request, reply) => {
    guard();
    faults.arm(request.body as FaultRule);
    return reply.status(201).send({ items: faults.rules });
  });
  app.get('/v1/sandbox/faults', () => {
    guard();
    return Promise.resolve({ items: faults.rules });
  });
  app.delete('/v1/sandbox/faults', (_request, reply) => {
    guard();
    faults.clear();
    return reply.status(204).send();
  });
}
