import { createAccessTokenVerifier, type VerifyAccessToken } from '@bazaar/auth';
import type { Logger } from '@bazaar/logging';
import { createApp } from '@bazaar/service-kit';
import type { Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Config } from './config';
import { createPaymentRepository, type PaymentRepository } from './payment.repository';
import { registerPaymentRoutes } from './payment.routes';
import { createPaymentService, type PaymentService } from './payment.service';
import type { PaymentProcessor } from './processor';

/** What the payments app is built from; `main.ts` passes the real ones, tests their own. */
export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'renderMetrics'>;
  readonly pool: pg.Pool;
  readonly processor: PaymentProcessor;
  /** For /readyz: whether the event bus is connected. */
  readonly isBusReady?: () => boolean;
  readonly verify?: VerifyAccessToken;
  readonly now?: () => Date;
}

export interface PaymentsApp {
  readonly app: FastifyInstance;
  readonly service: PaymentService;
  readonly repository: PaymentRepository;
}

/** Builds the payments app from its dependencies. No I/O happens at build time. */
export function buildApp(deps: AppDeps): PaymentsApp {
  const { config, logger, telemetry, pool, processor } = deps;
  const repository = createPaymentRepository();
  const service = createPaymentService({
    pool,
    repository,
    processor,
    logger,
    meter: telemetry.meter,
    authorizeMaxAttempts: config.PAYMENTS_AUTHORIZE_MAX_ATTEMPTS,
    batchSize: config.PAYMENTS_BATCH_SIZE,
    batchConcurrency: config.PAYMENTS_BATCH_CONCURRENCY,
    ...(deps.now === undefined ? {} : { now: deps.now }),
  });
  const verify =
    deps.verify ??
    createAccessTokenVerifier({
      jwksUrl: config.JWKS_URL,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
    });
  // The processor is not a readiness check: when it is down payments still answer, and fail
  // authorizations fast with PROCESSOR_UNAVAILABLE instead of leaving orders hanging.
  const isBusReady = deps.isBusReady;
  const app = createApp({
    config,
    logger,
    telemetry,
    readinessChecks: [
      { name: 'postgres', check: () => pool.query('SELECT 1') },
      ...(isBusReady === undefined
        ? []
        : [
            {
              name: 'rabbitmq',
              check: () =>
                isBusReady() ? Promise.resolve() : Promise.reject(new Error('not connected')),
            },
          ]),
    ],
  });
  registerPaymentRoutes(app, { service, verify });
  return { app, service, repository };
}
