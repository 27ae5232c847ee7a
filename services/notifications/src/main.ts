// Composition root: config → logger → telemetry → PostgreSQL (migrated) → SMTP → event bus →
// app → listen, then consume and dispatch; drain on SIGTERM.
import { validateEvent } from '@bazaar/contracts';
import { createEventBus } from '@bazaar/event-bus';
import { createHttpClient } from '@bazaar/http-client';
import { registerInstance } from '@bazaar/registry';
import { bootstrapService, runService, type Closer } from '@bazaar/service-kit';
import { buildApp } from './app';
import { readConfig } from './config';
import { createPool, migrate } from './database';
import { createMailDevReconciler } from './mail-reconciler';
import { createMailer } from './mailer';
import { createUsersApi } from './recipient-directory';

const service = 'notifications';

const { config, logger, telemetry } = bootstrapService(service, readConfig);
const pool = createPool({
  connectionString: config.DATABASE_URL,
  logger,
  max: config.DATABASE_POOL_SIZE,
  statementTimeoutMs: config.REQUEST_TIMEOUT_MS,
});
const bus = createEventBus({
  url: config.RABBITMQ_URL,
  logger,
  validate: validateEvent,
  name: service,
});
const mailer = createMailer({
  url: config.SMTP_URL,
  from: config.MAIL_FROM,
  timeoutMs: config.SMTP_TIMEOUT_MS,
  poolSize: config.SMTP_POOL_SIZE,
});
const mailApi =
  config.MAIL_RECONCILE_URL === undefined
    ? undefined
    : createHttpClient({
        name: 'mail',
        baseUrl: config.MAIL_RECONCILE_URL,
        timeoutMs: 3_000,
        retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 500 },
        breaker: { consecutiveFailures: 5, halfOpenAfterMs: 5_000 },
        logger,
      });
const usersClient =
  config.USERS_URL === undefined
    ? undefined
    : createHttpClient({
        name: 'users',
        baseUrl: config.USERS_URL,
        timeoutMs: config.USERS_TIMEOUT_MS,
        retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 500 },
        breaker: { consecutiveFailures: 5, halfOpenAfterMs: 10_000 },
        logger,
      });
const notifications = buildApp({
  config,
  logger,
  telemetry,
  pool,
  bus,
  mailer,
  ...(mailApi === undefined ? {} : { reconciler: createMailDevReconciler(mailApi) }),
  ...(usersClient === undefined
    ? {}
    : {
        usersApi: createUsersApi({
          client: usersClient,
          clientId: config.USERS_CLIENT_ID,
          clientSecret: config.USERS_CLIENT_SECRET,
        }),
      }),
  // The crash test's fault: die like kill -9 between the relay's "250 OK" and the record of it.
  ...(config.FAULT_CRASH_AFTER_SEND
    ? { afterSend: () => process.kill(process.pid, 'SIGKILL') }
    : {}),
});

try {
  await migrate(pool, logger);
  // Closed in reverse: the registry lease first, then consuming stops, the pool last.
  const closers: Closer[] = [
    { name: 'postgres pool', close: () => pool.end() },
    { name: 'smtp', close: () => mailer.close() },
    ...(mailApi === undefined ? [] : [{ name: 'mail api', close: () => mailApi.close() }]),
    ...(usersClient === undefined ? [] : [{ name: 'users api', close: () => usersClient.close() }]),
    { name: 'event bus', close: () => bus.close() },
    { name: 'consumer and dispatcher', close: () => notifications.stop(), timeoutMs: 15_000 },
  ];
  // Consuming starts before the port opens: "ready" then means the group's queue exists and is
  // bound, so no event published after readiness can miss this service.
  await notifications.start();
  const running = await runService({
    app: notifications.app,
    config,
    logger,
    telemetry,
    onShutdown: closers,
  });
  closers.push(...(await registerInstance(service, config, running.port, logger)));
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  await notifications.stop().catch(() => undefined);
  mailer.close();
  await bus.close().catch(() => undefined);
  await pool.end().catch(() => undefined);
  await telemetry.shutdown();
  process.exit(1);
}
