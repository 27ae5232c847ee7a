// Composition root: config → logger → telemetry → PostgreSQL (migrated) → Redis → event bus and
// outbox relay → app → listen, drain on SIGTERM.
import { validateEvent } from '@bazaar/contracts';
import { createEventBus, startPgOutboxRelay } from '@bazaar/event-bus';
import { registerInstance } from '@bazaar/registry';
import { bootstrapService, runService, type Closer } from '@bazaar/service-kit';
import { buildApp } from './app';
import { readConfig } from './config';
import { createPool, migrate } from './database';
import { createRedis } from './redis';

const service = 'users';

const { config, logger, telemetry } = bootstrapService(service, readConfig);
const pool = createPool({
  connectionString: config.DATABASE_URL,
  logger,
  max: config.DATABASE_POOL_SIZE,
  statementTimeoutMs: config.REQUEST_TIMEOUT_MS,
});
const redis = createRedis({
  url: config.REDIS_URL,
  commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  logger,
});
const bus = createEventBus({
  url: config.RABBITMQ_URL,
  logger,
  validate: validateEvent,
  name: service,
});
const users = buildApp({ config, logger, telemetry, pool, redis });

try {
  await migrate(pool, logger);
  await users.start();
  // RabbitMQ is not needed to serve: events wait in the outbox until the relay can publish them.
  const relay = startPgOutboxRelay({ pool, bus, logger });
  // Closed in reverse: the registry lease (pushed once listening) first, the pool last.
  const closers: Closer[] = [
    { name: 'postgres pool', close: () => pool.end() },
    { name: 'redis', close: () => void redis.disconnect() },
    { name: 'event bus', close: () => bus.close() },
    { name: 'outbox relay', close: () => relay.stop() },
    { name: 'signing key reload', close: () => users.stop() },
  ];
  const running = await runService({
    app: users.app,
    config,
    logger,
    telemetry,
    onShutdown: closers,
  });
  closers.push(...(await registerInstance(service, config, running.port, logger)));
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  users.stop();
  redis.disconnect();
  await bus.close().catch(() => undefined);
  await pool.end().catch(() => undefined);
  await telemetry.shutdown();
  process.exit(1);
}
