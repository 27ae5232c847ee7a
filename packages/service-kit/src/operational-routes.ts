import { AppError } from '@bazaar/errors';
import type { Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import { sendProblem } from './problem-replies';
import { runReadinessChecks, type CheckOutcome, type ReadinessCheck } from './readiness';

/** Routes for the platform, not for clients: no spans, no request metrics, access log at debug. */
export const operationalRoutes: ReadonlySet<string> = new Set(['/livez', '/readyz', '/metrics']);

/** What the operational routes read. */
export interface OperationalRouteDeps {
  readonly telemetry: Pick<Telemetry, 'renderMetrics'>;
  readonly readinessChecks: readonly ReadinessCheck[];
  readonly isShuttingDown: () => boolean;
}

/**
 * `GET /livez`: the process is alive (event loop turning) — never checks dependencies, so a database
 * outage does not get every instance restarted. `GET /readyz`: every readiness check passes and the
 * instance is not draining. `GET /metrics`: Prometheus text.
 */
export function registerOperationalRoutes(app: FastifyInstance, deps: OperationalRouteDeps): void {
  const { telemetry, readinessChecks, isShuttingDown } = deps;
  // Log changes of a check's outcome, not every probe: probes come every few seconds.
  const lastOutcomes = new Map<string, CheckOutcome>();

  app.get('/livez', () => ({ status: 'alive' }));

  app.get('/readyz', async (request, reply) => {
    if (isShuttingDown()) {
      return sendProblem(
        reply,
        new AppError('SHUTTING_DOWN', 'This instance is shutting down.'),
        undefined,
      );
    }
    const results = await runReadinessChecks(readinessChecks);
    const checks: Record<string, CheckOutcome> = {};
    for (const { name, outcome, error } of results) {
      checks[name] = outcome;
      const previous = lastOutcomes.get(name) ?? 'ok';
      if (outcome !== previous) {
        if (outcome === 'ok') request.log.info({ check: name }, 'readiness check recovered');
        else request.log.warn({ check: name, outcome, err: error }, 'readiness check failing');
      }
      lastOutcomes.set(name, outcome);
    }
    const failing = results.filter(({ outcome }) => outcome !== 'ok').map(({ name }) => name);
    if (failing.length === 0) return { status: 'ready', checks };
    return sendProblem(
      reply,
      new AppError('SERVICE_UNAVAILABLE', `Not ready: ${failing.join(', ')}.`, {
        details: { checks },
      }),
      undefined,
    );
  });

  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await telemetry.renderMetrics();
    return reply.type(contentType).send(body);
  });
}
