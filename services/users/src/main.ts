// Composition root: config → logger → telemetry → PostgreSQL (migrated) → Redis → event bus and
// outbox relay → app → listen, drain on SIGTERM.
import { validateEvent } from '@bazaar/contracts';
import { createEventBus, startPgOutboxRelay } from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import { registerService } from '@bazaar/registry';
import { runService, type Closer } from '@bazaar/service-kit';
import { startTelemetry } from '@bazaar/telemetry';
import { buildApp } from './app';
import { readConfig, type Config } from './config';
import { createPool, migrate } from './database';
import { createRedis } from './redis';

const service = 'users';

let config: Config;
try {
  config = readConfig();
} catch (error) {
  createLogger({ service }).fatal({ err: error }, 'invalid configuration');
  process.exit(1);
}

const logger = createLogger({
  service,
  level: config.LOG_LEVEL,
  ...(config.SERVICE_INSTANCE_ID === undefined ? {} : { instanceId: config.SERVICE_INSTANCE_ID }),
});
const telemetry = startTelemetry({
  serviceName: service,
  ...(config.SERVICE_INSTANCE_ID === undefined
    ? {}
    : { serviceInstanceId: config.SERVICE_INSTANCE_ID }),
  ...(config.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
    ? {}
    : { otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT }),
});
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
  closers.push(
    ...(await registerService({
      etcdUrl: config.ETCD_URL,
      service,
      instanceId: config.SERVICE_INSTANCE_ID,
      host: config.HOST,
      port: running.port,
      logger,
    })),
  );
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  users.stop();
  redis.disconnect();
  await bus.close().catch(() => undefined);
  await pool.end().catch(() => undefined);
  await telemetry.shutdown();
  process.exit(1);
}
