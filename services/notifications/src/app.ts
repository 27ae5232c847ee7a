import { createAccessTokenVerifier, type VerifyAccessToken } from '@bazaar/auth';
import type { Consumer, EventBus } from '@bazaar/event-bus';
import type { Logger } from '@bazaar/logging';
import { createApp } from '@bazaar/service-kit';
import type { Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { registerAlertRoutes } from './alert.routes';
import type { Config } from './config';
import { startDeliveryDispatcher, type DeliveryDispatcher } from './delivery-dispatcher';
import { startEventsConsumer } from './events.consumer';
import type { MailReconciler } from './mail-reconciler';
import type { Mailer } from './mailer';
import type { ClaimedDelivery } from './notification.repository';
import { registerNotificationRoutes } from './notification.routes';
import { createNotificationService, type NotificationService } from './notification.service';
import { createRecipientDirectory, type UsersApi } from './recipient-directory';
import { assertTemplatesComplete, loadTemplates, type Templates } from './templates';

/** What the notifications app is built from; `main.ts` passes the real ones, tests their own. */
export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'renderMetrics'>;
  readonly pool: pg.Pool;
  readonly bus: EventBus;
  readonly mailer: Mailer;
  readonly reconciler?: MailReconciler;
  readonly usersApi?: UsersApi;
  readonly verify?: VerifyAccessToken;
  readonly templates?: Templates;
  readonly afterSend?: (delivery: ClaimedDelivery) => void;
  readonly now?: () => Date;
}

export interface NotificationsApp {
  readonly app: FastifyInstance;
  readonly notifications: NotificationService;
  /** Starts consuming events and sending deliveries (after migrations). */
  start(): Promise<void>;
  /** Stops consuming first (no new intents), then the dispatcher (finishes its round). */
  stop(): Promise<void>;
}

/** Builds the notifications app from its dependencies. No I/O happens until `start()`. */
export function buildApp(deps: AppDeps): NotificationsApp {
  const { config, logger, telemetry, pool, bus } = deps;
  const templates = deps.templates ?? loadTemplates();
  assertTemplatesComplete(templates, [
    'welcome',
    'order-confirmed',
    'order-cancelled',
    'payment-refunded',
    'announcement',
    'alert',
  ]);
  const verify =
    deps.verify ??
    createAccessTokenVerifier({
      jwksUrl: config.JWKS_URL,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
    });

  let dispatcher: DeliveryDispatcher | undefined;
  let consumer: Consumer | undefined;
  const wake = () => dispatcher?.wake();

  const notifications = createNotificationService({
    pool,
    templates,
    messageIdDomain: config.MAIL_MESSAGE_ID_DOMAIN,
    operatorsEmail: config.OPERATORS_EMAIL,
    onDeliveriesRecorded: wake,
    ...(deps.now === undefined ? {} : { now: deps.now }),
  });

  // The event bus is not needed to serve the inbox or to take alerts, so readiness is PostgreSQL's.
  const app = createApp({
    config,
    logger,
    telemetry,
    readinessChecks: [{ name: 'postgres', check: () => pool.query('SELECT 1') }],
  });
  registerNotificationRoutes(app, { notifications, verify });
  registerAlertRoutes(app, { notifications, webhookToken: config.ALERT_WEBHOOK_TOKEN });

  return {
    app,
    notifications,
    async start() {
      dispatcher = startDeliveryDispatcher({
        pool,
        mailer: deps.mailer,
        templates,
        recipients: createRecipientDirectory(pool, deps.usersApi),
        ...(deps.reconciler === undefined ? {} : { reconciler: deps.reconciler }),
        logger,
        meter: telemetry.meter,
        batchSize: config.DELIVERY_BATCH_SIZE,
        pollMs: config.DELIVERY_POLL_MS,
        leaseMs: config.DELIVERY_LEASE_MS,
        maxAttempts: config.DELIVERY_MAX_ATTEMPTS,
        backoff: { baseMs: config.DELIVERY_BACKOFF_BASE_MS, maxMs: config.DELIVERY_BACKOFF_MAX_MS },
        ...(deps.afterSend === undefined ? {} : { afterSend: deps.afterSend }),
      });
      consumer = await startEventsConsumer({
        bus,
        pool,
        group: config.CONSUMER_GROUP,
        notifications,
        logger,
        onRecorded: wake,
      });
    },
    async stop() {
      await consumer?.close();
      await dispatcher?.stop();
    },
  };
}
