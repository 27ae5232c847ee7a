import type { Logger } from '@bazaar/logging';
import { createApp } from '@bazaar/service-kit';
import type { Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import { registerAuthorizationRoutes } from './authorization.routes';
import { createAuthorizationService } from './authorization.service';
import { areFaultsEnabled, type Config } from './config';
import { createFaultPlan, type FaultPlan } from './fault';
import { registerFaultRoutes } from './fault.routes';
import { createIdempotencyRepository, type IdempotencyRepository } from './idempotency.repository';

/** What the psp-sandbox app is built from; `main.ts` passes the real ones, tests their own. */
export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'renderMetrics'>;
  readonly now?: () => number;
  /** Where Idempotency-Keys are kept; in memory, sized by the config, by default. */
  readonly idempotency?: IdempotencyRepository;
  readonly faults?: FaultPlan;
}

/** The psp-sandbox HTTP app. Builds everything in memory; nothing listens until `runService`. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, logger, telemetry, now = Date.now } = deps;
  const idempotency =
    deps.idempotency ??
    createIdempotencyRepository({
      ttlMs: config.PSP_SANDBOX_IDEMPOTENCY_TTL_MS,
      maxKeys: config.PSP_SANDBOX_IDEMPOTENCY_MAX_KEYS,
      now,
    });
  const faults = deps.faults ?? createFaultPlan();
  const app = createApp({ config, logger, telemetry });
  registerAuthorizationRoutes(app, {
    service: createAuthorizationService({
      slowDelayMs: config.PSP_SANDBOX_SLOW_DELAY_MS,
      meter: telemetry.meter,
      now: () => new Date(now()),
      maxRecords: config.PSP_SANDBOX_MAX_AUTHORIZATIONS,
    }),
    idempotency,
    faults,
    baseLatencyMs: config.PSP_SANDBOX_LATENCY_MS,
  });
  registerFaultRoutes(app, { faults, isEnabled: areFaultsEnabled(config) });
  return app;
}
