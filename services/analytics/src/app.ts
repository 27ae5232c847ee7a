import { createAccessTokenVerifier, type VerifyAccessToken } from '@bazaar/auth';
import type { Logger } from '@bazaar/logging';
import { createApp } from '@bazaar/service-kit';
import type { Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import { registerAnalyticsRoutes } from './analytics.routes';
import type { Config } from './config';
import type { Warehouse } from './warehouse';

/** What the analytics app is built from; `main.ts` passes the real ones, tests their own. */
export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'renderMetrics'>;
  readonly warehouse: Warehouse;
  readonly verify?: VerifyAccessToken;
  readonly now?: () => Date;
}

/** Builds the HTTP app. No I/O happens here (the JWKS is fetched on the first token). */
export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, logger, telemetry, warehouse } = deps;
  const verify =
    deps.verify ??
    createAccessTokenVerifier({
      jwksUrl: config.JWKS_URL,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
    });
  // Readiness is the warehouse: the broker being away delays ingestion, not the answers.
  const app = createApp({
    config,
    logger,
    telemetry,
    readinessChecks: [{ name: 'warehouse', check: () => warehouse.ping() }],
  });
  registerAnalyticsRoutes(app, { warehouse, verify, ...(deps.now ? { now: deps.now } : {}) });
  return app;
}
