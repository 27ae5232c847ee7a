// Composition root: config → logger → telemetry → PostgreSQL (migrated) → processor adapter →
// event bus, outbox relay, consumers, void sweeper → app → listen, drain on SIGTERM.
import { validateEvent } from '@bazaar/contracts';
import { createEventBus, startPgOutboxRelay, type Consumer } from '@bazaar/event-bus';
import { registerInstance } from '@bazaar/registry';
import { bootstrapService, runService, type Closer } from '@bazaar/service-kit';
import { buildApp } from './app';
import { readConfig } from './config';
import { createPool, migrate } from './database';
import { startOrderCancelledConsumer } from './order-cancelled.consumer';
import { startOrderConfirmedConsumer } from './order-confirmed.consumer';
import { startOrderPlacedConsumer } from './order-placed.consumer';
import { pspSandboxProcessorFromConfig } from './psp-sandbox.processor';
import { startVoidSweeper } from './void.sweeper';

const service = 'payments';

const { config, logger, telemetry } = bootstrapService(service, readConfig);
const pool = createPool({
  connectionString: config.DATABASE_URL,
  logger,
  max: config.DATABASE_POOL_SIZE,
  statementTimeoutMs: config.REQUEST_TIMEOUT_MS,
});
const processor = pspSandboxProcessorFromConfig(config, logger);
const bus = createEventBus({
  url: config.RABBITMQ_URL,
  logger,
  validate: validateEvent,
  name: service,
  exchange: config.EVENTS_EXCHANGE,
});
const groupPrefix = config.PAYMENTS_CONSUMER_GROUP_PREFIX;
const payments = buildApp({
  config,
  logger,
  telemetry,
  pool,
  processor,
  isBusReady: () => bus.isReady,
});

try {
  await migrate(pool, logger);
  const relay = startPgOutboxRelay({ pool, bus, logger });
  const consumers: Consumer[] = await Promise.all([
    startOrderPlacedConsumer(bus, payments.service, {
      prefetch: config.PAYMENTS_PREFETCH,
      maxAttempts: config.PAYMENTS_AUTHORIZE_MAX_ATTEMPTS,
      group: `${groupPrefix}.order-placed`,
    }),
    startOrderConfirmedConsumer(bus, payments.service, {
      prefetch: config.PAYMENTS_PREFETCH,
      group: `${groupPrefix}.order-confirmed`,
    }),
    startOrderCancelledConsumer(bus, payments.service, {
      prefetch: config.PAYMENTS_PREFETCH,
      group: `${groupPrefix}.order-cancelled`,
    }),
  ]);
  const sweeper = startVoidSweeper({
    service: payments.service,
    intervalMs: config.PAYMENTS_SWEEP_INTERVAL_MS,
    logger,
  });
  // Closed in reverse: the registry lease (pushed once listening) first, then consumers stop taking
  // messages and finish theirs, the relay publishes what they wrote, and the pool goes last.
  const closers: Closer[] = [
    { name: 'postgres pool', close: () => pool.end() },
    { name: 'processor client', close: () => processor.close() },
    { name: 'event bus', close: () => bus.close() },
    { name: 'outbox relay', close: () => relay.stop() },
    { name: 'void sweeper', close: () => sweeper.stop() },
    ...consumers.map((consumer) => ({
      name: `consumer ${consumer.group}`,
      close: () => consumer.close(),
    })),
  ];
  const running = await runService({
    app: payments.app,
    config,
    logger,
    telemetry,
    onShutdown: closers,
  });
  closers.push(...(await registerInstance(service, config, running.port, logger)));
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  await bus.close().catch(() => undefined);
  await processor.close().catch(() => undefined);
  await pool.end().catch(() => undefined);
  await telemetry.shutdown();
  process.exit(1);
}
